"""diffcap.store"""
