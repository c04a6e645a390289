"""iomt.core"""
