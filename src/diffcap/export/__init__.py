"""diffcap.export"""
