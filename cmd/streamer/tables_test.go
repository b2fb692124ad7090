package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/streamer-go/streamer/pkg/store/dynamo"
	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
)

func TestParseTablesFlags(t *testing.T) {
	tests := []struct {
		args    []string
		want    tablesOptions
		wantErr error // nil, flag.ErrHelp, or usageError (matched by type)
	}{
		{args: []string{"create"}, want: tablesOptions{action: "create", prefix: dynamo.DefaultPrefix}},
		{
			args: []string{"create", "--endpoint", "http://127.0.0.1:4567", "--prefix", "app-", "--region", "eu-west-1"},
			want: tablesOptions{action: "create", endpoint: "http://127.0.0.1:4567", prefix: "app-", region: "eu-west-1"},
		},
		{args: []string{"create", "-endpoint=http://x:1"}, want: tablesOptions{action: "create", endpoint: "http://x:1", prefix: dynamo.DefaultPrefix}},
		{args: nil, wantErr: usageError{}},
		{args: []string{"drop"}, wantErr: usageError{}},
		{args: []string{"--endpoint", "http://x:1"}, wantErr: usageError{}},
		{args: []string{"create", "extra"}, wantErr: usageError{}},
		{args: []string{"create", "--bogus"}, wantErr: usageError{}},
		{args: []string{"create", "--prefix", ""}, wantErr: usageError{}},
		{args: []string{"create", "-h"}, wantErr: flag.ErrHelp},
		{args: []string{"-h"}, wantErr: flag.ErrHelp},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			got, err := parseTablesFlags(tc.args, io.Discard)
			switch tc.wantErr.(type) {
			case nil:
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if got != tc.want {
					t.Errorf("options = %+v, want %+v", got, tc.want)
				}
			case usageError:
				var u usageError
				if !errors.As(err, &u) {
					t.Errorf("error = %v, want a usage error", err)
				}
			default:
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("error = %v, want %v", err, tc.wantErr)
				}
			}
		})
	}
}

func TestTablesExitCodes(t *testing.T) {
	var stderr bytes.Buffer
	if code := run(t.Context(), []string{"tables"}, io.Discard, &stderr); code != 2 {
		t.Errorf("streamer tables: exit %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), "Usage: streamer tables create") {
		t.Errorf("no usage on stderr: %q", stderr.String())
	}
	if code := run(t.Context(), []string{"tables", "create", "-h"}, io.Discard, io.Discard); code != 0 {
		t.Errorf("streamer tables create -h: exit %d, want 0", code)
	}
}

// TestTablesCreateTwice runs the command against a real DynamoDB-API server
// (dynalite under make test): the first run creates the three tables, the second
// finds them and succeeds without changing anything.
func TestTablesCreateTwice(t *testing.T) {
	endpoint := dynamotest.Endpoint(t)
	// The command under test creates the tables, so only a prefix.
	prefix := dynamotest.Prefix("cli")
	args := []string{"tables", "create", "--endpoint", endpoint, "--prefix", prefix}
	conns, reqs := dynamo.ConnectionsTable(prefix), dynamo.RequestsTable(prefix)

	var out1, err1 bytes.Buffer
	if code := run(t.Context(), args, &out1, &err1); code != 0 {
		t.Fatalf("first run: exit %d, stderr %s", code, err1.String())
	}
	client, closeClient, err := dynamoClient(t.Context(), endpoint, "", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeClient) // runs after the table cleanup below (LIFO)
	t.Cleanup(func() {
		ctx := context.WithoutCancel(t.Context())
		for _, name := range []string{conns, reqs} {
			_, _ = client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
		}
	})
	for _, want := range []string{"created table " + conns, "created table " + reqs} {
		if !strings.Contains(out1.String(), want) {
			t.Errorf("first run output %q lacks %q", out1.String(), want)
		}
	}
	// TTL is enabled, or, on a server without UpdateTimeToLive (dynalite),
	// the run still succeeds and says so on stderr.
	for _, table := range []string{conns, reqs} {
		enabled := strings.Contains(out1.String(), "TTL enabled on "+table)
		warned := strings.Contains(err1.String(), "warning: "+table+": this server does not support UpdateTimeToLive")
		if enabled == warned {
			t.Errorf("%s: want exactly one of a TTL line on stdout or a warning on stderr; stdout %q, stderr %q", table, out1.String(), err1.String())
		}
	}
	// The tables exist, are ACTIVE and have the schema's indexes.
	for _, def := range dynamo.Tables(prefix) {
		d, err := client.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: def.TableName})
		if err != nil {
			t.Fatalf("DescribeTable %s: %v", aws.ToString(def.TableName), err)
		}
		if d.Table.TableStatus != "ACTIVE" || len(d.Table.GlobalSecondaryIndexes) != len(def.GlobalSecondaryIndexes) {
			t.Errorf("%s: status %s with %d indexes, want ACTIVE with %d", aws.ToString(def.TableName),
				d.Table.TableStatus, len(d.Table.GlobalSecondaryIndexes), len(def.GlobalSecondaryIndexes))
		}
	}

	var out2, err2 bytes.Buffer
	if code := run(t.Context(), args, &out2, &err2); code != 0 {
		t.Fatalf("second run: exit %d, stderr %s", code, err2.String())
	}
	for _, want := range []string{"table " + conns + " already exists", "table " + reqs + " already exists"} {
		if !strings.Contains(out2.String(), want) {
			t.Errorf("second run output %q lacks %q", out2.String(), want)
		}
	}
	if strings.Contains(out2.String(), "created") {
		t.Errorf("second run created something: %q", out2.String())
	}
}
