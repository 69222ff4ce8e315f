"""diffcap.pipeline"""
