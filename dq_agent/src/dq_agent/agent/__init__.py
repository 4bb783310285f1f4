"""dq-agent: finds migrating guests through libvirt, enforces dirty quotas, exports metrics."""
