package ddbstream_test

import (
	"encoding/json"
	"fmt"

	"github.com/streamer-go/streamer/runtime/ddbstream"
)

func ExampleCompileFilter() {
	f, err := ddbstream.CompileFilter(`{"eventName":["INSERT","MODIFY"],"dynamodb":{"NewImage":{"status":{"S":["PENDING"]}}}}`)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, rec := range []string{
		`{"eventName":"INSERT","dynamodb":{"NewImage":{"status":{"S":"PENDING"}}}}`,
		`{"eventName":"MODIFY","dynamodb":{"NewImage":{"status":{"S":"DONE"}}}}`,
	} {
		var doc map[string]any
		_ = json.Unmarshal([]byte(rec), &doc)
		fmt.Println(f.Match(doc))
	}
	// Output:
	// true
	// false
}
