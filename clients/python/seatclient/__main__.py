from seatclient.cli import main

main()
