"""The input gate: decides whether an input is a spine radiograph before any model reads it.

Evidence comes from the DICOM header (:mod:`spinexr.gate.header`) and from the image itself.
"""
