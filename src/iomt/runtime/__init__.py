"""iomt.runtime"""
