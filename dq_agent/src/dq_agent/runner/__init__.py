"""Controller-side scenario runner: persistent SSH sessions to lab hosts (paramiko),
QEMU started and QMP driven through them. Ansible provisions; the runner runs."""
