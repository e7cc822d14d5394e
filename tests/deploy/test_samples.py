"""The deployment kit's samples parse with the real tools and say what the code knows:
``systemd-analyze verify`` on the units, ``nginx -t`` on the proxy sample, ``logrotate``
on its snippet (a forced rotation too), and the env example's variables against the code.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from deploy_helpers import BACKUP, DEPLOY, INSTALLED_BALIS, REPO, UNITS, balis_command, require

UNIT_FILES = sorted(p.name for p in UNITS.iterdir())
# The instances systemd would start: a template is verified through one of its instances.
INSTANCES = {"balis-serve@.service": "balis-serve@5001.service",
             "balis-worker@.service": "balis-worker@1.service"}


def unit_settings(name: str) -> dict[str, list[str]]:
    """KEY -> values of a unit file (systemd allows a key more than once)."""
    settings: dict[str, list[str]] = {}
    for line in (UNITS / name).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def installable_copy(folder: Path) -> Path:
    """The units as they would be installed, with the commands pointing at this checkout
    (verify insists that ExecStart's program exists)."""
    balis = balis_command(folder)
    units = folder / "units"
    units.mkdir()
    for name in UNIT_FILES:
        text = (UNITS / name).read_text(encoding="utf-8")
        text = text.replace(INSTALLED_BALIS, str(balis))
        text = text.replace("/usr/local/sbin/balis-backup", str(BACKUP))
        target = units / INSTANCES.get(name, name)
        target.write_text(text, encoding="utf-8")
    return units


def test_the_kit_has_the_units_the_deployment_guide_names():
    assert set(UNIT_FILES) == {"balis-serve@.service", "balis-worker@.service",
                               "balis-db-upgrade.service", "balis-mail.service",
                               "balis-backup.service", "balis-backup.timer"}


def test_the_units_pass_systemd_analyze_verify(tmp_path):
    analyze = require("systemd-analyze", "systemd")
    units = installable_copy(tmp_path)
    names = sorted(p.name for p in units.iterdir())
    done = subprocess.run([analyze, "verify", "--man=no", *names], cwd=units,
                          capture_output=True, text=True, timeout=120, check=False)
    # A good unit prints nothing; an unknown key or a bad value is only a warning on
    # stderr (exit status 0), so both count.
    problems = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 0 and problems == [], done.stderr


def test_verify_would_catch_a_broken_unit(tmp_path):
    """The check above can fail: a misspelt key and a bad time are reported."""
    analyze = require("systemd-analyze", "systemd")
    units = installable_copy(tmp_path)
    unit = units / "balis-mail.service"
    unit.write_text(unit.read_text(encoding="utf-8")
                    .replace("TimeoutStopSec=30", "TimeoutStopSec=thirty")
                    .replace("RestartSec=", "RestartSek="), encoding="utf-8")
    done = subprocess.run([analyze, "verify", "--man=no", unit.name], cwd=units,
                          capture_output=True, text=True, timeout=120, check=False)
    assert "thirty" in done.stderr and "RestartSek" in done.stderr


def _help(*command: str) -> str:
    done = subprocess.run([sys.executable, "-m", "balis", *command, "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("unit", ["balis-serve@.service", "balis-worker@.service",
                                  "balis-db-upgrade.service", "balis-mail.service"])
def test_each_unit_runs_a_command_with_options_balis_has(unit):
    (exec_start,) = unit_settings(unit)["ExecStart"]
    program, *argv = exec_start.split()
    assert program == INSTALLED_BALIS
    words = [w for w in argv if not w.startswith("-")][:2]
    command = words[:2] if words[:2] == ["db", "upgrade"] else words[:1]
    known = _help(*command)
    for option in (w for w in argv if w.startswith("--")):
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", known), \
            f"{unit}: balis {' '.join(command)} has no {option}"


def test_serve_unit_stops_after_its_drain_and_reloads_with_sighup():
    settings = unit_settings("balis-serve@.service")
    (exec_start,) = settings["ExecStart"]
    from web.server import FLUSH_GRACE

    drain = float(re.search(r"--drain-timeout\s+(\d+)", exec_start).group(1))
    # systemd's SIGKILL must come after the drain and the last answers' flush.
    assert float(settings["TimeoutStopSec"][0]) > drain + FLUSH_GRACE
    assert settings["KillSignal"] == ["SIGTERM"]
    assert settings["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert "--port %i" in exec_start and "--no-migrate" in exec_start
    assert "balis-db-upgrade.service" in " ".join(settings["After"] + settings["Wants"])
    assert settings["ProtectSystem"] == ["strict"] and settings["NoNewPrivileges"] == ["yes"]


def env_example() -> dict[str, bool]:
    """Variable -> set (True) or only shown commented out (False)."""
    out: dict[str, bool] = {}
    for line in (DEPLOY / "balis.env.example").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^(#?)([A-Z][A-Z0-9_]*)=", line)
        if match:
            out[match.group(2)] = not match.group(1)
    return out


def test_env_example_names_only_variables_something_reads():
    """Each variable is read by our code, by the kit's units or scripts, or (the metrics
    folder) by prometheus_client itself."""
    sources = [p for package in ("balis", "web", "ill", "broker", "connectors", "marc")
               for p in (REPO / package).rglob("*.py")]
    sources += [p for p in DEPLOY.rglob("*") if p.is_file() and p.suffix != ".md"
                and p.name != "balis.env.example"]
    try:
        import prometheus_client
        sources += list(Path(prometheus_client.__file__).parent.rglob("*.py"))
    except ImportError:
        pass
    text = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in sources)
    names = env_example()
    assert {"BALIS_CONFIG", "BALIS_INSTANCE", "BALIS_SECRET_KEY", "DATABASE_URL",
            "BALIS_REDIS_URL", "PROMETHEUS_MULTIPROC_DIR"} <= {n for n, on in names.items() if on}
    unread = [name for name in names if not re.search(rf"\b{name}\b", text)]
    assert unread == []


def test_every_variable_a_unit_expands_is_in_the_env_example():
    set_names = {name for name, on in env_example().items() if on}
    for unit in UNIT_FILES:
        for name in re.findall(r"\$\{([A-Z0-9_]+)\}", (UNITS / unit).read_text("utf-8")):
            assert name in set_names, f"{unit} expands {name}, which the example does not set"


def nginx_prefix(folder: Path, conf: str) -> Path:
    """A minimal main nginx.conf in ``folder`` that includes ``conf``; returns its path."""
    for sub in ("logs", "tmp"):
        (folder / sub).mkdir(exist_ok=True)
    main = folder / "nginx.conf"
    temp = "\n".join(f"    {kind}_temp_path {folder}/tmp/{kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (folder / "balis.conf").write_text(conf, encoding="utf-8")
    main.write_text(f"pid {folder}/nginx.pid;\nerror_log {folder}/logs/error.log;\n"
                    f"events {{}}\nhttp {{\n{temp}\n    access_log {folder}/logs/access.log;\n"
                    f"    include {folder}/balis.conf;\n}}\n", encoding="utf-8")
    return main


def self_signed(folder: Path) -> tuple[Path, Path]:
    openssl = require("openssl", "openssl")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=balis.example.edu.cn", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=120)
    return cert, key


def localized_nginx_sample(folder: Path) -> str:
    """The sample with its certificate and log paths in ``folder``: nothing else changed."""
    cert, key = self_signed(folder)
    text = (DEPLOY / "nginx" / "balis.conf").read_text(encoding="utf-8")
    for old, new in (("/etc/ssl/balis/fullchain.pem", cert), ("/etc/ssl/balis/privkey.pem", key),
                     ("/var/log/nginx/", f"{folder}/logs/")):
        assert old in text
        text = text.replace(old, str(new))
    return text


def test_the_nginx_sample_passes_nginx_t(tmp_path):
    nginx = require("nginx", "nginx-light")
    main = nginx_prefix(tmp_path, localized_nginx_sample(tmp_path))
    done = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(main)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "test is successful" in done.stderr


def test_nginx_t_would_catch_a_broken_sample(tmp_path):
    nginx = require("nginx", "nginx-light")
    text = localized_nginx_sample(tmp_path).replace("proxy_read_timeout 120s;",
                                                     "proxy_read_timeout 120s")
    main = nginx_prefix(tmp_path, text)
    done = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(main)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0


def test_nginx_body_limit_matches_the_app():
    from web import create_app

    app = create_app({"TESTING": True, "SESSION_STORE": "memory",
                      "INSTANCE_PATH": str(REPO / "instance")})
    try:
        limit = app.config["MAX_CONTENT_LENGTH"]
    finally:
        app.extensions["balis"].close()
    sample = (DEPLOY / "nginx" / "balis.conf").read_text(encoding="utf-8")
    (size,) = re.findall(r"client_max_body_size\s+(\d+)m;", sample)
    assert int(size) << 20 == limit


def logrotate_copy(folder: Path) -> Path:
    import grp
    import os
    import pwd

    logs = folder / "logs"
    logs.mkdir()
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    text = (DEPLOY / "logrotate" / "balis").read_text(encoding="utf-8")
    assert "/var/log/balis/" in text and "su balis balis" in text
    conf = folder / "balis.logrotate"
    conf.write_text(text.replace("/var/log/balis/", f"{logs}/")
                    .replace("su balis balis", f"su {user} {group}"), encoding="utf-8")
    conf.chmod(0o644)
    return conf


def test_the_logrotate_snippet_parses(tmp_path):
    logrotate = require("logrotate", "logrotate")
    conf = logrotate_copy(tmp_path)
    done = subprocess.run([logrotate, "-d", "-s", str(tmp_path / "state"), str(conf)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and "error" not in done.stderr.lower(), done.stderr


def test_logrotate_rotates_without_a_signal_and_the_writer_goes_on(tmp_path):
    """copytruncate: the process keeps its file open (O_APPEND, as systemd's
    StandardOutput=append: opens it) and its next line lands at the start of the emptied
    file; no SIGHUP, which would reload balis serve's configuration."""
    logrotate = require("logrotate", "logrotate")
    conf = logrotate_copy(tmp_path)
    log = tmp_path / "logs" / "serve-5001.log"
    with open(log, "a", encoding="utf-8") as writer:
        writer.write("before rotation\n")
        writer.flush()
        subprocess.run([logrotate, "-f", "-s", str(tmp_path / "state"), str(conf)],
                       check=True, capture_output=True, timeout=60)
        writer.write("after rotation\n")
        writer.flush()
    rotated = [p for p in log.parent.iterdir() if p != log]
    assert len(rotated) == 1 and rotated[0].read_text("utf-8") == "before rotation\n"
    assert log.read_text("utf-8") == "after rotation\n"
    directives = [line.split()[0] for line in conf.read_text("utf-8").splitlines()
                  if line.strip() and not line.lstrip().startswith("#")]
    assert "copytruncate" in directives
    assert not {"postrotate", "prerotate", "firstaction", "lastaction"} & set(directives)


@pytest.mark.parametrize("script", ["balis-backup.sh", "balis-restore.sh"])
def test_the_backup_scripts_pass_shellcheck(script):
    shellcheck = require("shellcheck", "shellcheck")
    done = subprocess.run([shellcheck, str(DEPLOY / "backup" / script)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout
