"""`make install` puts the binary, a working configuration and the systemd
unit under DESTDIR/PREFIX, with the unit's placeholders filled in."""
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_make_install_into_destdir(tmp_path):
    dest = tmp_path / "root"
    r = subprocess.run(["make", "-s", "-C", str(ROOT), "install", f"DESTDIR={dest}",
                        "PREFIX=/opt/recd"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    binary = dest / "opt/recd/bin/recd"
    conf = dest / "opt/recd/etc/recd/recd.json"
    unit = dest / "opt/recd/lib/systemd/system/recd.service"
    for p in (binary, conf, unit):
        assert p.exists(), p
    assert binary.stat().st_mode & 0o111
    text = unit.read_text()
    assert "@PREFIX@" not in text
    assert "ExecStart=/opt/recd/bin/recd -c /opt/recd/etc/recd/recd.json" in text
    cfg = conf.read_text()
    assert '"data_dir": "/var/lib/recd"' in cfg
    assert '"models_dir": "/opt/recd/share/recd/models"' in cfg
    # the installed config is valid for the installed binary
    r = subprocess.run([str(binary), "-c", str(conf), "--check-config"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
