"""Optional dependencies: a test skips (naming the apt package) only when the failing import is the named optional
package; an ImportError of tnerf_ns's own code still fails. Fake packages on sys.path stand in for open3d."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from helpers import REPO, env
from optional import import_optional, is_the_optional_dependency

from tnerf_ns import system_deps

MISSING_LIBRARY = 'raise ImportError("libusb-1.0.so.0: cannot open shared object file: No such file or directory")\n'


def fake_package(root, name: str, body: str) -> None:
    (root / name).mkdir(parents=True)
    (root / name / "__init__.py").write_text("from . import core\n")
    (root / name / "core.py").write_text(body)


@pytest.fixture
def on_path(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("fakeopt")]:
        del sys.modules[name]


def test_a_missing_shared_library_of_the_optional_package_skips_naming_it(on_path):
    fake_package(on_path, "fakeopt_lib", MISSING_LIBRARY)
    with pytest.raises(pytest.skip.Exception, match="fakeopt_lib.*libusb-1.0.so.0.*pip install fakeopt_lib"):
        import_optional("fakeopt_lib")


def test_a_package_that_is_not_installed_skips():
    with pytest.raises(pytest.skip.Exception, match="fakeopt_not_installed"):
        import_optional("fakeopt_not_installed")


def test_open3d_skip_names_the_apt_package():
    assert system_deps.install_hint("open3d") == "apt-get install libusb-1.0-0 (libusb-1.0)"
    assert system_deps.install_hint("open3d.visualization") == "apt-get install libusb-1.0-0 (libusb-1.0)"


def test_a_broken_import_of_tnerf_ns_is_not_skipped(on_path):
    fake_package(on_path, "fakeopt_own", "import tnerf_ns.no_such_module\n")
    with pytest.raises(ModuleNotFoundError, match="tnerf_ns.no_such_module"):
        import_optional("fakeopt_own")


def test_an_import_error_raised_inside_tnerf_ns_is_not_skipped(on_path, monkeypatch):
    # an ImportError raised by the project's own files (traceback through tnerf_ns/) is the project's bug
    import optional

    fake_package(on_path, "fakeopt_through_own", MISSING_LIBRARY)
    monkeypatch.setattr(optional, "OWN_CODE", on_path / "fakeopt_through_own")
    with pytest.raises(ImportError, match="libusb"):
        import_optional("fakeopt_through_own")


def test_another_packages_import_error_is_not_the_optional_one(on_path):
    fake_package(on_path, "fakeopt_a", MISSING_LIBRARY)
    fake_package(on_path, "fakeopt_b", "import fakeopt_a\n")
    try:
        import fakeopt_b  # noqa: F401
    except ImportError as err:
        assert not is_the_optional_dependency(err, "fakeopt_c")  # fails in a's files, not c's
        assert is_the_optional_dependency(err, "fakeopt_a")


SKIPPING_TEST = """
from optional import import_optional

def test_needs_open3d():
    import_optional("open3d")
"""


def run_with_fake_open3d(tmp_path, open3d_body: str) -> subprocess.CompletedProcess:
    """pytest in a subprocess where ``open3d`` is a package that fails to import as described."""
    fake_package(tmp_path / "site", "open3d", open3d_body)
    (tmp_path / "test_needs.py").write_text(textwrap.dedent(SKIPPING_TEST))
    e = env()
    e["PYTHONPATH"] = f"{tmp_path / 'site'}:{REPO / 'tests'}"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=tmp_path, env=e, capture_output=True, text=True, check=False)  # fmt: skip


def test_without_libusb_the_run_passes_and_names_the_skip(tmp_path):
    proc = run_with_fake_open3d(tmp_path, MISSING_LIBRARY)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 skipped" in proc.stdout and "apt-get install libusb-1.0-0" in proc.stdout


def test_a_broken_tnerf_ns_import_under_open3d_fails_the_run(tmp_path):
    proc = run_with_fake_open3d(tmp_path, "import tnerf_ns.no_such_module\n")
    assert proc.returncode == 1 and "1 failed" in proc.stdout, proc.stdout + proc.stderr


def test_system_deps_report_prints_the_install_command(monkeypatch, capsys):
    monkeypatch.setattr(system_deps, "SYSTEM_DEPS", tuple(
        system_deps.SystemDep(d.name, d.apt, d.needed_by, lambda: False, d.python_modules)
        for d in system_deps.SYSTEM_DEPS))  # fmt: skip
    system_deps.main([])
    out = capsys.readouterr().out
    assert "sudo apt-get install -y libusb-1.0-0 chromium" in out and "missing libusb-1.0" in out
    system_deps.main(["--packages"])
    assert capsys.readouterr().out.strip() == "libusb-1.0-0 chromium"
