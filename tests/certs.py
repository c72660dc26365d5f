"""Test certificates made at test time with the openssl CLI: a private CA and leaf certificates.

``Certs(folder)`` makes a CA; ``certs.leaf("server", sans="DNS:localhost,IP:127.0.0.1")``
signs a server certificate (``client=True``: a client certificate for mTLS; ``expired=True``:
valid only in 2020). Every file is PEM. Callers skip when ``openssl`` is missing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

_CA_CONFIG = """
[ ca ]
default_ca = test_ca
[ test_ca ]
dir = {folder}
database = $dir/index.txt
new_certs_dir = $dir/issued
serial = $dir/serial
default_md = sha256
policy = anything
copy_extensions = none
unique_subject = no
[ anything ]
commonName = supplied
"""


def have_openssl() -> bool:
    return shutil.which("openssl") is not None


def _run(*args: str) -> None:
    done = subprocess.run(["openssl", *args], capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr[-400:]!r}")


class Certs:
    """A private CA in ``folder`` that signs leaf certificates."""

    def __init__(self, folder: Path, name: str = "Test CA") -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "issued").mkdir(exist_ok=True)
        (folder / "index.txt").write_text("")
        (folder / "serial").write_text("1000\n")
        self.config = folder / "ca.cnf"
        self.config.write_text(_CA_CONFIG.format(folder=folder))
        self.ca = folder / "ca.pem"
        self.ca_key = folder / "ca.key"
        _run(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(self.ca_key), "-out", str(self.ca), "-subj", f"/CN={name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip

    def leaf(
        self,
        name: str,
        sans: str = "DNS:localhost,IP:127.0.0.1",
        *,
        client: bool = False,
        expired: bool = False,
    ) -> tuple[Path, Path]:
        """A certificate and its key, signed by this CA."""
        key, csr, cert = (self.folder / f"{name}.{ext}" for ext in ("key", "csr", "pem"))
        _run(
            "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
            "-out", str(csr), "-subj", f"/CN={name}",
        )  # fmt: skip
        ext = self.folder / f"{name}.ext"
        usage = "clientAuth" if client else "serverAuth"
        lines = [f"extendedKeyUsage={usage}", "basicConstraints=CA:FALSE"]
        if sans:
            lines.append(f"subjectAltName={sans}")
        ext.write_text("\n".join(lines) + "\n")
        dates = (
            ["-startdate", "20200101000000Z", "-enddate", "20200102000000Z"]
            if expired
            else ["-days", "2"]
        )
        _run(
            "ca", "-batch", "-config", str(self.config), "-cert", str(self.ca),
            "-keyfile", str(self.ca_key), "-in", str(csr), "-out", str(cert),
            "-extfile", str(ext), "-notext", *dates,
        )  # fmt: skip
        return cert, key
