"""Data shipped with maskdesk; installed as the package `maskdesk.resources`.

Read it through `maskdesk.resource_files`, never through paths relative to this folder:
a wheel, an editable install and a PyInstaller bundle each put it somewhere else.
"""
