from seatd.cli import main

main()
