"""Probe /dev/kvm for the dirty-quota capability (KVM_CHECK_EXTENSION via ctypes).

Used by the dq_kernel Ansible role after rebooting a lab host into the patched
kernel, and by the agent to decide whether the KVM dirty-quota path exists.
Numbers are the uAPI in docs/contracts.md §4 (patches/uapi/dirty_quota.h).

    python -m dq_agent.kvmcap [--device /dev/kvm] [--json]

Exit status: 0 capability present, 1 absent (or no usable /dev/kvm), 2 bad usage.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass

KVM_CAP_DIRTY_QUOTA_MIGRATION = 1000
KVM_EXIT_DIRTY_QUOTA_FULL = 1000

# _IO(KVMIO=0xAE, nr): no argument struct, so the request is just (0xAE << 8) | nr.
KVM_GET_API_VERSION = 0xAE00
KVM_CHECK_EXTENSION = 0xAE03
KVM_API_VERSION = 12


@dataclass(frozen=True)
class KvmCapProbe:
    """What /dev/kvm says about dirty quotas on this host."""

    device: str
    device_usable: bool
    api_version: int | None
    dirty_quota: bool
    reason: str


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def check_extension(fd: int, cap: int) -> int:
    """KVM_CHECK_EXTENSION on an open /dev/kvm or VM fd; raises OSError on failure."""
    libc = _libc()
    libc.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_long]
    libc.ioctl.restype = ctypes.c_int
    ret = int(libc.ioctl(fd, KVM_CHECK_EXTENSION, cap))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"KVM_CHECK_EXTENSION({cap}): {os.strerror(err)}")
    return ret


def _api_version(fd: int) -> int:
    libc = _libc()
    libc.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_long]
    libc.ioctl.restype = ctypes.c_int
    ret = int(libc.ioctl(fd, KVM_GET_API_VERSION, 0))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"KVM_GET_API_VERSION: {os.strerror(err)}")
    return ret


def probe(device: str = "/dev/kvm") -> KvmCapProbe:
    """Open the KVM device and ask for KVM_CAP_DIRTY_QUOTA_MIGRATION; never raises."""
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        return KvmCapProbe(device, False, None, False, f"cannot open {device}: {exc.strerror}")
    try:
        api = _api_version(fd)
        if api != KVM_API_VERSION:
            return KvmCapProbe(device, False, api, False, f"unexpected KVM API version {api}")
        present = check_extension(fd, KVM_CAP_DIRTY_QUOTA_MIGRATION) == 1
    except OSError as exc:
        return KvmCapProbe(device, False, None, False, str(exc))
    finally:
        os.close(fd)
    reason = (
        "KVM_CAP_DIRTY_QUOTA_MIGRATION present"
        if present
        else "KVM_CAP_DIRTY_QUOTA_MIGRATION absent: kernel without the dirty-quota series"
    )
    return KvmCapProbe(device, True, api, present, reason)


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"dq-kvmcap: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _OneLineParser(prog="dq-kvmcap", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="/dev/kvm", help="KVM device node")
    parser.add_argument("--json", action="store_true", help="print the probe as JSON")
    args = parser.parse_args(argv)
    result = probe(args.device)
    if args.json:
        print(json.dumps(asdict(result), sort_keys=True))
    else:
        print(f"{result.device}: {result.reason}")
    return 0 if result.dirty_quota else 1


if __name__ == "__main__":
    raise SystemExit(main())
