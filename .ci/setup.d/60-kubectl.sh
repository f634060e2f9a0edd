# kubectl, for the docs' wait_job recipe (test/k8s-manifests.test.ts), run
# against a stand-in API server the test starts on 127.0.0.1: no cluster.
command -v kubectl >/dev/null 2>&1 || apt_install kubernetes-client
