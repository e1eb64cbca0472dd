from archer.cli import main

main()
