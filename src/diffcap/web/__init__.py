"""diffcap.web"""
