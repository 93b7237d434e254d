"""Constructs, one folder per capability, plus foundation/ (how anything is made safe).

Each capability folder has a CDK-free ``settings.py`` (its part of the stage configuration) beside its
constructs. Package ``__init__`` modules import nothing, so settings load without starting jsii.
"""
