from celltext.cli import main

main()
