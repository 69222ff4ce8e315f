"""diffcap.captioning"""
