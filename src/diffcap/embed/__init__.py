"""diffcap.embed"""
