"""Runner tests: real sshd per network namespace, real QEMU over the sessions."""
