"""PySide6 face of maskdesk. Imports core; inference only inside worker threads."""
