"""The caller's space of the bucket: the files API and the space rules (quota, paths)."""
