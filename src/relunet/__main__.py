from relunet.cli import main

main()
