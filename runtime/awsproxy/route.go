package awsproxy

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"
)

// target is what a hostname names: the service, its Region, and the
// handler that serves it here (nil when not emulated, with why).
type target struct {
	service string
	region  string
	handler http.Handler
	why     string
}

// isAWSHost reports whether host is one of AWS's service endpoints.
func isAWSHost(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return strings.HasSuffix(host, ".amazonaws.com")
}

// resolve reads an AWS endpoint hostname: [prefix.]service[.region].amazonaws.com.
func (p *Proxy) resolve(host string) target {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	rest, ok := strings.CutSuffix(host, ".amazonaws.com")
	if !ok || rest == "" {
		return target{service: host, why: "not an AWS endpoint"}
	}
	labels := strings.Split(rest, ".")
	t := target{}
	if n := len(labels); n >= 2 && isRegion(labels[n-1]) {
		t.region = labels[n-1]
		labels = labels[:n-1]
	}
	t.service = labels[len(labels)-1]
	prefix := labels[:len(labels)-1]
	if t.region != "" && t.region != p.cfg.Region {
		t.why = fmt.Sprintf("the local runtime serves Region %s, not %s", p.cfg.Region, t.region)
		return t
	}
	switch t.service {
	case "execute-api":
		switch {
		case len(prefix) != 1 || t.region == "":
			t.why = "want {apiId}.execute-api.{region}.amazonaws.com"
		case prefix[0] != p.cfg.APIID:
			t.why = fmt.Sprintf("API %s is not the template's WebSocket API (its id here is %s)", prefix[0], p.cfg.APIID)
		case p.cfg.ExecuteAPI == nil:
			t.why = "no WebSocket API runs"
		default:
			t.handler = p.cfg.ExecuteAPI
		}
	case "dynamodb":
		switch {
		case len(prefix) != 0 || t.region == "":
			t.why = "want dynamodb.{region}.amazonaws.com"
		case p.cfg.DynamoDB == nil:
			t.why = "no DynamoDB endpoint is configured"
		default:
			t.handler = p.cfg.DynamoDB
		}
	case "lambda":
		switch {
		case len(prefix) != 0 || t.region == "":
			t.why = "want lambda.{region}.amazonaws.com"
		case p.cfg.Lambda == nil:
			t.why = "the Lambda API is not served"
		default:
			t.handler = p.cfg.Lambda
		}
	default:
		t.why = "the local runtime serves execute-api, dynamodb and lambda"
	}
	return t
}

// isRegion reports whether s looks like a Region name (us-east-1,
// us-gov-west-1, eu-central-2).
func isRegion(s string) bool {
	parts := strings.Split(s, "-")
	if len(parts) < 3 || len(parts[0]) != 2 {
		return false
	}
	last := parts[len(parts)-1]
	for _, c := range last {
		if c < '0' || c > '9' {
			return false
		}
	}
	return last != ""
}

// NotEmulatedCode is the error code of a call to a service the local
// runtime does not serve, as the SDKs report it.
const NotEmulatedCode = "NotEmulated"

// notEmulated answers a call the local runtime cannot serve, in the error
// shape of the service's protocol so that the SDK raises it as is (501
// is not retried by the SDKs' default retryers), and logs the first one of
// each service and caller.
func (p *Proxy) notEmulated(w http.ResponseWriter, r *http.Request, t target, caller string) {
	if caller == "" {
		caller = "an unknown caller"
	}
	msg := "not emulated: " + t.service + " called by " + caller + " (" + t.why + ")"
	p.mu.Lock()
	first := !p.warned[t.service+" "+caller]
	p.warned[t.service+" "+caller] = true
	p.mu.Unlock()
	if first {
		p.log.Warn("not emulated: "+t.service+" called by "+caller, "host", r.Host, "why", t.why)
	} else {
		p.log.Debug("not emulated: "+t.service+" called by "+caller, "host", r.Host, "why", t.why)
	}
	id := requestID()
	h := w.Header()
	h.Set("X-Amzn-Errortype", NotEmulatedCode)
	h.Set("X-Amzn-Requestid", id)
	h.Set("X-Amz-Request-Id", id)
	ct := r.Header.Get("Content-Type")
	switch {
	case t.service == "s3":
		// REST-XML (S3): an <Error> document.
		h.Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusNotImplemented)
		_ = xml.NewEncoder(w).Encode(struct {
			XMLName   xml.Name `xml:"Error"`
			Code      string
			Message   string
			RequestID string `xml:"RequestId"`
		}{Code: NotEmulatedCode, Message: msg, RequestID: id})
	case strings.HasPrefix(ct, "application/x-www-form-urlencoded"):
		// The query protocol (STS, SNS, older SQS): an <ErrorResponse>.
		h.Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusNotImplemented)
		type errXML struct {
			Type    string
			Code    string
			Message string
		}
		_ = xml.NewEncoder(w).Encode(struct {
			XMLName   xml.Name `xml:"ErrorResponse"`
			Error     errXML
			RequestID string `xml:"RequestId"`
		}{Error: errXML{Type: "Sender", Code: NotEmulatedCode, Message: msg}, RequestID: id})
	default:
		// The JSON protocols (awsJson, restJson): the code in the header
		// and in __type, the message in the body.
		if strings.HasPrefix(ct, "application/x-amz-json") {
			h.Set("Content-Type", ct)
		} else {
			h.Set("Content-Type", "application/json")
		}
		w.WriteHeader(http.StatusNotImplemented)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": NotEmulatedCode, "message": msg, "Message": msg})
	}
}

func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	s := hex.EncodeToString(b[:])
	return s[:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}
