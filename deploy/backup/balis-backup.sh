#!/usr/bin/env bash
# balis-backup: one consistent backup of a balis-broker installation (docs/deployment.md,
# "Backups and restore"). Installed as /usr/local/sbin/balis-backup; run nightly by
# balis-backup.timer, or by hand.
#
#   balis-backup [--env FILE] [--out DIR] [--keep N]
#
# Writes DIR/balis-YYYYmmddTHHMMSSZ/ (first as .partial, renamed when complete):
#   database.pgdump    pg_dump -Fc of $DATABASE_URL (PostgreSQL), or
#   database.sqlite3   an online copy (sqlite3 .backup) of $BALIS_INSTANCE/balis.sqlite3
#   union/*.sqlite     online copies of the SQLite union index files in $BALIS_UNION_DIR
#   files.tar.gz       the instance folder (secret_key, portal/), the libraries file and
#                      the portal beside it, the env file, $BALIS_HARVEST_DIR, the rest of
#                      $BALIS_UNION_DIR, under their absolute paths
#   MANIFEST           what was backed up from where, and every file's size and sha256
# then keeps the newest N backups (default $BALIS_BACKUP_KEEP, else 14). A union index
# published into PostgreSQL (balis index publish) is a copy of the SQLite file: in the ILL
# database it is in that dump; elsewhere publish it again after a restore.
#
# Settings come from the environment (the unit's EnvironmentFile=/etc/balis/balis.env),
# then /etc/balis/balis.env for what it does not set, or --env FILE instead (KEY=VALUE
# lines, as systemd reads them; its values win); that file is backed up too. Tools: PG_DUMP,
# SQLITE3 and BALIS_BIN name other binaries than pg_dump, sqlite3 and balis.
set -eu
set -o pipefail

prog=balis-backup
die() { echo "$prog: $*" >&2; exit 1; }
note() { echo "$prog: $*" >&2; }

# KEY=VALUE lines as systemd's EnvironmentFile= reads them: no shell evaluation, so a
# URL with & or ? in it is safe; surrounding quotes are dropped.
read_env_file() {  # read_env_file FILE [keep]: with keep, set variables win over the file
    local line key value
    [ -r "$1" ] || die "cannot read the env file $1"
    while IFS= read -r line || [ -n "$line" ]; do
        line=${line#"${line%%[![:space:]]*}"}
        case $line in ''|'#'*|';'*) continue ;; esac
        case $line in *=*) ;; *) continue ;; esac
        key=${line%%=*}
        value=${line#*=}
        case $value in \"*\") value=${value#\"}; value=${value%\"} ;;
                       \'*\') value=${value#\'}; value=${value%\'} ;; esac
        case $key in *[!A-Za-z0-9_]*|'') die "$1: not a variable name: $key" ;; esac
        if [ "${2-}" = keep ] && [ -n "${!key+set}" ]; then continue; fi
        export "$key=$value"
    done < "$1"
}

env_file="" out="" keep=""
while [ $# -gt 0 ]; do
    case $1 in
        --env) [ $# -ge 2 ] || die "--env needs a file"; env_file=$2; shift 2 ;;
        --out) [ $# -ge 2 ] || die "--out needs a folder"; out=$2; shift 2 ;;
        --keep) [ $# -ge 2 ] || die "--keep needs a number"; keep=$2; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
# Without --env: the installed file fills in what the environment (the unit's) lacks.
if [ -n "$env_file" ]; then
    read_env_file "$env_file"
elif [ -r /etc/balis/balis.env ]; then
    env_file=/etc/balis/balis.env
    read_env_file "$env_file" keep
fi

out=${out:-${BALIS_BACKUP_DIR:-/var/backups/balis}}
keep=${keep:-${BALIS_BACKUP_KEEP:-14}}
case $keep in ''|*[!0-9]*) die "--keep must be a whole number, not $keep" ;; esac
[ "$keep" -ge 1 ] || die "--keep must be at least 1"
PG_DUMP=${PG_DUMP:-pg_dump}
SQLITE3=${SQLITE3:-sqlite3}
if [ -z "${BALIS_BIN-}" ]; then
    BALIS_BIN=balis
    [ ! -x /opt/balis/venv/bin/balis ] || BALIS_BIN=/opt/balis/venv/bin/balis
fi

# The same defaults as the code: relative paths are relative to the working directory.
abspath() { readlink -m -- "$1"; }
instance=$(abspath "${BALIS_INSTANCE:-instance}")
config=$(abspath "${BALIS_CONFIG:-config/libraries.yaml}")
harvest=${BALIS_HARVEST_DIR-}; [ -z "$harvest" ] || harvest=$(abspath "$harvest")
union=${BALIS_UNION_DIR-}; [ -z "$union" ] || union=$(abspath "$union")

# libpq wants postgresql://; SQLAlchemy's postgresql+psycopg:// names the same database.
libpq_url() {
    case $1 in
        postgresql+*://*) echo "postgresql://${1#*://}" ;;
        *) echo "$1" ;;
    esac
}

# An online copy of a SQLite database that may be written meanwhile (WAL mode: copying
# the file alone is not a backup).
sqlite_copy() {
    if command -v "$SQLITE3" >/dev/null 2>&1; then
        "$SQLITE3" "$1" ".timeout 60000" ".backup '$2'"
    else
        python3 - "$1" "$2" <<'PY'
import sqlite3, sys
source, target = sqlite3.connect(sys.argv[1], timeout=60), sqlite3.connect(sys.argv[2])
with target:
    source.backup(target)
PY
    fi
}
is_sqlite() { [ -f "$1" ] && [ "$(head -c 15 -- "$1" 2>/dev/null)" = "SQLite format 3" ]; }

mkdir -p -- "$out"
exec 9>"$out/.balis-backup.lock"
flock -n 9 || die "another backup into $out is running"
rm -rf -- "$out"/balis-*.partial

stamp=$(date -u +%Y%m%dT%H%M%SZ)
final="$out/balis-$stamp"
n=1
while [ -e "$final" ]; do n=$((n + 1)); final="$out/balis-$stamp-$n"; done  # same second
work="$final.partial"
mkdir -m 0700 -- "$work"
trap 'rm -rf -- "$work"' EXIT
manifest_head="$work/.manifest-head"
{
    echo "# balis-broker backup"
    echo "# created $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname 2>/dev/null || echo unknown)"
    version=$("$BALIS_BIN" --version 2>/dev/null || true)
    [ -z "$version" ] || echo "# version $version"
    echo "path instance $instance"
    echo "path config $config"
} > "$manifest_head"

# 1. The ILL database.
database_url=${DATABASE_URL-}
case $database_url in
    postgres://*|postgresql://*|postgresql+*://*)
        note "pg_dump of the ILL database"
        "$PG_DUMP" --format=custom --file="$work/database.pgdump" \
            --dbname="$(libpq_url "$database_url")" \
            || die "pg_dump failed (is $PG_DUMP the server's major version or newer?)"
        echo "database postgresql" >> "$manifest_head" ;;
    sqlite:///*|'')
        if [ -n "$database_url" ]; then db=$(abspath "${database_url#sqlite:///}")
        else db="$instance/balis.sqlite3"; fi
        if [ -f "$db" ]; then
            note "online copy of the SQLite ledger $db"
            sqlite_copy "$db" "$work/database.sqlite3"
            echo "database sqlite $db" >> "$manifest_head"
        else
            note "no ILL database at $db (nothing to copy)"
            echo "database none" >> "$manifest_head"
        fi ;;
    *) die "DATABASE_URL is neither postgresql:// nor sqlite:///: cannot back it up" ;;
esac

# 2. The union index: its SQLite files, copied online.
skip="$work/.skip"
: > "$skip"
if [ -n "$union" ] && [ -d "$union" ]; then
    mkdir "$work/union"
    for file in "$union"/*; do
        is_sqlite "$file" || continue
        name=$(basename -- "$file")
        note "online copy of the union index $file"
        sqlite_copy "$file" "$work/union/$name"
        echo "union $name $file" >> "$manifest_head"
        printf '%s\n%s-wal\n%s-shm\n%s-journal\n' "$file" "$file" "$file" "$file" >> "$skip"
    done
    rmdir "$work/union" 2>/dev/null || true
fi

# 3. Files, under their absolute paths. The ledger was copied above; checkpoints go
# first, so a harvest appended to meanwhile is never behind its checkpoint in the
# backup (balis harvest --resume truncates the output to its checkpoint).
for suffix in "" -wal -shm -journal; do echo "$instance/balis.sqlite3$suffix" >> "$skip"; done
abspath "$out" >> "$skip"  # backups kept inside a backed-up folder are not backed up again
paths=()
for path in "$instance" "$config" "$(dirname -- "$config")/portal" ${env_file:+"$(abspath "$env_file")"} \
            ${harvest:+"$harvest"} ${union:+"$union"}; do
    if [ -e "$path" ]; then
        paths+=("$path")
        echo "files $path" >> "$manifest_head"
    fi
done
list="$work/.files"
: > "$list"
if [ ${#paths[@]} -gt 0 ]; then
    {
        find "${paths[@]}" -name '*.checkpoint' -type f
        # Not a union index being built or updated (balis index writes .NAME.building-PID
        # or .NAME.updating-PID, renamed over NAME when complete): half an index.
        find "${paths[@]}" ! -name '*.checkpoint' ! -name '.*.building-*' ! -name '.*.updating-*'
    } | awk 'NR == FNR { skip[$0] = 1; next }
             { for (s in skip) if ($0 == s || index($0, s "/") == 1) next; print }' "$skip" - \
      | awk '!seen[$0]++' | sed 's#^/##' > "$list"
fi
note "archiving $(wc -l < "$list") files and folders"
status=0
tar -C / --no-recursion --numeric-owner --verbatim-files-from --no-unquote \
    -czf "$work/files.tar.gz" -T "$list" || status=$?
# 1: a file changed while it was read (a harvest being appended to): still a backup.
[ "$status" -le 1 ] || die "tar failed ($status)"

# 4. The manifest: sizes and sha256 of everything in the backup.
{
    cat "$manifest_head"
    (cd "$work" && find . -type f ! -name '.*' -printf '%P\n' | LC_ALL=C sort | while IFS= read -r name; do
        printf 'file %s %s %s\n' "$(sha256sum -- "$name" | cut -d' ' -f1)" "$(stat -c %s -- "$name")" "$name"
    done)
} > "$work/.manifest"
mv -- "$work/.manifest" "$work/MANIFEST"
rm -f -- "$manifest_head" "$skip" "$list"
mv -- "$work" "$final"
trap - EXIT
note "backup written: $final ($(du -sh -- "$final" | cut -f1))"

# 5. Keep the newest $keep.
find "$out" -mindepth 1 -maxdepth 1 -type d -name 'balis-*' ! -name '*.partial' -printf '%f\n' \
    | LC_ALL=C sort | head -n -"$keep" | while IFS= read -r old; do
        note "removing the old backup $out/$old"
        rm -rf -- "${out:?}/$old"
    done
echo "$final"
