"""DICOM networking: the SCP, study assembly, the SCU, AE allow-lists."""
