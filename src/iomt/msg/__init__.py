"""iomt.msg"""
