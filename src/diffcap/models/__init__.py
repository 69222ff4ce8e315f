"""diffcap.models"""
