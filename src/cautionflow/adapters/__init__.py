"""Side effects live here: the housing database, the register, SMTP, files."""
