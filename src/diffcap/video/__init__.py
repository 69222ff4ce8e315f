"""diffcap.video"""
