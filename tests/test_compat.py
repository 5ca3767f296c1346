import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_non_haar_wavelet_works_without_pkg_resources():
    # sys.modules[name] = None makes "import pkg_resources" fail, as on setuptools >= 82
    # or a fresh Python 3.12 venv.
    script = """
import sys
sys.modules["pkg_resources"] = None
import torch, invhide
hider = invhide.InvertibleHider(num_blocks=1, subnet="conv", wavelet="db2")
stego, lost = hider.hide(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
assert sys.modules["pkg_resources"] is None, "the stand-in leaked"
assert "pytorch_wavelets" in sys.modules
from pytorch_wavelets.dtcwt.coeffs import resource_stream
with resource_stream("pytorch_wavelets.dtcwt.data", "near_sym_a.npz") as f:
    assert f.read(2) == b"PK"
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_importing_invhide_does_not_import_pytorch_wavelets():
    script = "import sys, invhide; invhide.HiNet(num_blocks=1); print('pytorch_wavelets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"
