# shellcheck shell=bash
# The Django end-to-end test (test/django-e2e.test.ts): Debian's Django,
# gunicorn, whitenoise, dj-database-url and psycopg2, which the test wraps
# into a local wheelhouse (PyPI is unreachable), and a PostgreSQL server on
# 127.0.0.1 only, with a role that may create the test's databases. The test
# finds it through SLUGKIT_TEST_DATABASE_URL.
apt_install postgresql python3-django gunicorn python3-whitenoise python3-dj-database-url python3-psycopg2
pg_version=$(pg_lsclusters --no-header | awk 'NR == 1 { print $1 }')
if [ -z "$pg_version" ]; then
  pg_version=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -n | tail -n 1)
  pg_createcluster "$pg_version" main >/dev/null
fi
# 127.0.0.1 only (pg_conftool would write it unquoted or over-quoted).
sed -i -E "s/^#?listen_addresses[[:space:]]*=.*/listen_addresses = '127.0.0.1'/" "/etc/postgresql/$pg_version/main/postgresql.conf"
pg_ctlcluster "$pg_version" main start 2>/dev/null || pg_ctlcluster "$pg_version" main restart
pg_port=$(pg_conftool -s "$pg_version" main show port)
runuser -u postgres -- psql -q -p "$pg_port" -c "DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'slugkit') THEN CREATE ROLE slugkit LOGIN CREATEDB PASSWORD 'slugkit'; END IF;
END \$\$;"
export SLUGKIT_TEST_DATABASE_URL="postgres://slugkit:slugkit@127.0.0.1:$pg_port/postgres"
unset pg_version pg_port
