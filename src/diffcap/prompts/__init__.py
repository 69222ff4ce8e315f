"""diffcap.prompts"""
