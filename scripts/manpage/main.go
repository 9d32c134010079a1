// Command manpage prints hogrelay(1), made from the CLI's own help. The
// date is $SOURCE_DATE_EPOCH's when set (reproducible packages), else
// today's.
//
//	go run ./scripts/manpage -version 1.2.3 > hogrelay.1
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/hogrelay/hogrelay/cli"
)

func main() {
	version := flag.String("version", cli.Version, "version named in the page's footer")
	flag.Parse()
	date := time.Now()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			fmt.Fprintf(os.Stderr, "manpage: SOURCE_DATE_EPOCH=%q is not a number of seconds\n", s)
			os.Exit(2)
		}
		date = time.Unix(sec, 0)
	}
	if err := cli.WriteManPage(os.Stdout, *version, date); err != nil {
		fmt.Fprintln(os.Stderr, "manpage:", err)
		os.Exit(1)
	}
}
