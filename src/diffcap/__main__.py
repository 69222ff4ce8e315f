from diffcap.cli.main import main

main()
