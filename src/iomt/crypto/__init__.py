"""iomt.crypto"""
