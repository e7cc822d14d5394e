#!/usr/bin/env bash
# balis-restore: puts a backup made by balis-backup back (docs/deployment.md, "Backups and
# restore"). Installed as /usr/local/sbin/balis-restore.
#
#   balis-restore [--env FILE] [--root DIR] [--no-services] [--no-upgrade] [--yes] BACKUP
#
# In this order: checks every file of BACKUP against its MANIFEST (size and sha256) and
# stops at the first difference; stops the balis units that are running (serve, worker,
# mail); restores the PostgreSQL database (pg_restore --clean --if-exists into
# $DATABASE_URL, which must exist); unpacks the files (instance folder, secret key,
# portal, libraries file, env file, harvests, union index) under DIR (default /); puts the
# SQLite ledger and union index files back; runs `balis db upgrade` (a backup of an
# older release is migrated to this one); starts the units it stopped.
#
# --root DIR unpacks under DIR instead of / (a restore drill on a spare machine or into a
# scratch folder); the ledger and union files go under DIR too. --no-services leaves
# systemd alone; --no-upgrade skips the migration. Without --yes it asks first (and
# refuses when there is no terminal to ask on). Settings as for balis-backup: the
# environment, then /etc/balis/balis.env, or --env FILE; PG_RESTORE and BALIS_BIN name
# other binaries.
set -eu
set -o pipefail

prog=balis-restore
die() { echo "$prog: $*" >&2; exit 1; }
note() { echo "$prog: $*" >&2; }

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

env_file="" root=/ services=yes upgrade=yes yes=no backup=""
while [ $# -gt 0 ]; do
    case $1 in
        --env) [ $# -ge 2 ] || die "--env needs a file"; env_file=$2; shift 2 ;;
        --root) [ $# -ge 2 ] || die "--root needs a folder"; root=$2; shift 2 ;;
        --no-services) services=no; shift ;;
        --no-upgrade) upgrade=no; shift ;;
        --yes|-y) yes=yes; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        -*) die "unknown option: $1 (see --help)" ;;
        *) [ -z "$backup" ] || die "one backup at a time"; backup=$1; shift ;;
    esac
done
[ -n "$backup" ] || die "which backup? (a folder written by balis-backup; see --help)"
[ -f "$backup/MANIFEST" ] || die "$backup has no MANIFEST: not a balis-backup folder"
if [ -n "$env_file" ]; then
    read_env_file "$env_file"
elif [ -r /etc/balis/balis.env ]; then
    read_env_file /etc/balis/balis.env keep
fi
[ -d "$root" ] || die "--root $root is not a folder"
root=$(readlink -f -- "$root")
under() { if [ "$root" = / ]; then echo "$1"; else echo "$root$1"; fi; }
PG_RESTORE=${PG_RESTORE:-pg_restore}
if [ -z "${BALIS_BIN-}" ]; then
    BALIS_BIN=balis
    [ ! -x /opt/balis/venv/bin/balis ] || BALIS_BIN=/opt/balis/venv/bin/balis
fi
libpq_url() {
    case $1 in
        postgresql+*://*) echo "postgresql://${1#*://}" ;;
        *) echo "$1" ;;
    esac
}
manifest_value() { awk -v key="$1" '$1 == key { $1 = ""; sub(/^ /, ""); print; exit }' "$backup/MANIFEST"; }

# 1. Check the backup before touching anything.
checked=0
while read -r kind sum size name; do
    [ "$kind" = file ] || continue
    [ -f "$backup/$name" ] || die "$name is listed in the MANIFEST but missing"
    [ "$(stat -c %s -- "$backup/$name")" = "$size" ] || die "$name: size differs from the MANIFEST"
    [ "$(sha256sum -- "$backup/$name" | cut -d' ' -f1)" = "$sum" ] || die "$name: sha256 differs from the MANIFEST"
    checked=$((checked + 1))
done < "$backup/MANIFEST"
[ "$checked" -gt 0 ] || die "the MANIFEST lists no files"
note "$checked files match the MANIFEST ($(sed -n 's/^# created //p' "$backup/MANIFEST"))"

database=$(manifest_value database)
if [ -f "$backup/database.pgdump" ]; then
    case ${DATABASE_URL-} in
        postgres://*|postgresql://*|postgresql+*://*) ;;
        *) die "the backup holds a PostgreSQL dump but DATABASE_URL names no PostgreSQL database" ;;
    esac
fi
if [ "$yes" != yes ]; then
    [ -t 0 ] || die "this overwrites the database and files; run it again with --yes"
    printf 'Restore %s over the database and files under %s? [y/N] ' "$backup" "$root" >&2
    read -r answer
    case $answer in y|Y|yes) ;; *) die "nothing restored" ;; esac
fi

# 2. Stop what writes.
stopped=()
not_restarted() {
    [ "$1" -eq 0 ] || note "not restarted: ${stopped[*]} (systemctl start them once fixed)"
}
if [ "$services" = yes ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    mapfile -t stopped < <(systemctl list-units --type=service --state=active --plain --no-legend \
        'balis-serve@*' 'balis-worker@*' balis-mail.service | awk '{ print $1 }')
    if [ ${#stopped[@]} -gt 0 ]; then
        note "stopping ${stopped[*]}"
        systemctl stop "${stopped[@]}"
        # A failure below leaves them stopped (half a restore must not serve): say so.
        trap 'not_restarted $?' EXIT
    fi
fi

# The owner of a restored SQLite file: whoever owns its folder (the balis user), never
# root, or the service could no longer write its own database.
owned_like_folder() {
    [ "$(id -u)" -eq 0 ] || return 0
    chown --reference="$(dirname -- "$1")" -- "$1"
}
put_sqlite() {  # put_sqlite COPY TARGET: swap the file in whole, without a stale WAL
    mkdir -p -- "$(dirname -- "$2")"
    cp -- "$1" "$2.restoring"
    owned_like_folder "$2.restoring"
    rm -f -- "$2-wal" "$2-shm" "$2-journal"
    mv -- "$2.restoring" "$2"
}

# 3. The PostgreSQL database (a SQLite ledger goes back with the files, below).
if [ -f "$backup/database.pgdump" ]; then
    note "pg_restore of the ILL database"
    "$PG_RESTORE" --clean --if-exists --no-owner --single-transaction --exit-on-error \
        --dbname="$(libpq_url "$DATABASE_URL")" "$backup/database.pgdump" \
        || die "pg_restore failed; the database is as it was before (one transaction)"
fi

# 4. The files, with their owners and modes.
note "unpacking the files under $root"
tar -C "$root" -xzpf "$backup/files.tar.gz" --numeric-owner

# 5. The SQLite files, once their folders are back with their owners: the ledger and the
# union index.
if [ -f "$backup/database.sqlite3" ]; then
    target=${database#sqlite }
    if [ -z "$target" ] || [ "$target" = "$database" ]; then
        die "the MANIFEST does not say where the SQLite ledger was"
    fi
    note "SQLite ledger back to $(under "$target")"
    put_sqlite "$backup/database.sqlite3" "$(under "$target")"
fi
while read -r kind name path; do
    [ "$kind" = union ] || continue
    note "union index $name back to $(under "$path")"
    put_sqlite "$backup/union/$name" "$(under "$path")"
done < "$backup/MANIFEST"

# 6. The schema of this release (as the instance folder's owner, for the SQLite ledger).
if [ "$upgrade" = yes ]; then
    instance=$(awk '$1 == "path" && $2 == "instance" { print $3; exit }' "$backup/MANIFEST")
    run_as=()
    if [ "$(id -u)" -eq 0 ] && [ -n "$instance" ] && [ -d "$(under "$instance")" ]; then
        owner=$(stat -c %U -- "$(under "$instance")")
        [ "$owner" = root ] || [ "$owner" = UNKNOWN ] || run_as=(runuser -u "$owner" --)
    fi
    note "balis db upgrade"
    if [ -n "$instance" ]; then export BALIS_INSTANCE; BALIS_INSTANCE=$(under "$instance"); fi
    if [ -n "${DATABASE_URL-}" ] && [ "${database%% *}" = sqlite ]; then
        export DATABASE_URL; DATABASE_URL="sqlite:///$(under "${database#sqlite }")"
    fi
    "${run_as[@]}" "$BALIS_BIN" db upgrade || die "balis db upgrade failed (see above)"
fi

# 7. Start again what was running.
if [ ${#stopped[@]} -gt 0 ]; then
    note "starting ${stopped[*]}"
    systemctl start "${stopped[@]}"
fi
note "restored $backup"
