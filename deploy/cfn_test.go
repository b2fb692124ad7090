package deploy

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// This file reads template.json and resolves the CloudFormation intrinsic
// functions it uses, for a given set of parameter values, so that tests can
// compare the values AWS would see with the code. It is hand-written
// because no Go library evaluates CloudFormation templates; it knows only
// the functions the template uses and fails on any other, so a template
// change it cannot follow breaks the tests instead of passing them.

// templateFile is the file under test.
const templateFile = "template.json"

// Values the pseudo parameters resolve to.
var pseudoParams = map[string]string{
	"AWS::AccountId":        "123456789012",
	"AWS::Region":           "eu-west-1",
	"AWS::Partition":        "aws",
	"AWS::StackName":        "streamer-test",
	"AWS::URLSuffix":        "amazonaws.com",
	"AWS::NoValue":          "",
	"AWS::StackId":          "arn:aws:cloudformation:eu-west-1:123456789012:stack/streamer-test/1",
	"AWS::NotificationARNs": "",
}

// Resource types the template may use: SAM's function and the plain
// CloudFormation types of the API, the tables and the permissions.
var knownTypes = map[string]bool{
	"AWS::Serverless::Function":      true,
	"AWS::ApiGatewayV2::Api":         true,
	"AWS::ApiGatewayV2::Route":       true,
	"AWS::ApiGatewayV2::Integration": true,
	"AWS::ApiGatewayV2::Deployment":  true,
	"AWS::ApiGatewayV2::Stage":       true,
	"AWS::Lambda::Permission":        true,
	"AWS::DynamoDB::Table":           true,
}

// getAtts lists the Fn::GetAtt attributes the tests know for each type.
var getAtts = map[string][]string{
	"AWS::Serverless::Function": {"Arn"},
	"AWS::DynamoDB::Table":      {"Arn", "StreamArn"},
	"AWS::ApiGatewayV2::Api":    {"ApiEndpoint", "ApiId"},
}

type template struct {
	FormatVersion string                    `json:"AWSTemplateFormatVersion"`
	Transform     string                    `json:"Transform"`
	Description   string                    `json:"Description"`
	Parameters    map[string]parameter      `json:"Parameters"`
	Rules         map[string]rule           `json:"Rules"`
	Globals       struct{ Function object } `json:"Globals"`
	Resources     map[string]resource       `json:"Resources"`
	Outputs       map[string]struct {
		Description string `json:"Description"`
		Value       any    `json:"Value"`
	} `json:"Outputs"`
}

type object = map[string]any

type parameter struct {
	Type           string   `json:"Type"`
	Default        any      `json:"Default"`
	AllowedValues  []string `json:"AllowedValues"`
	AllowedPattern string   `json:"AllowedPattern"`
	MinValue       *float64 `json:"MinValue"`
	MaxValue       *float64 `json:"MaxValue"`
	Description    string   `json:"Description"`
}

type rule struct {
	RuleCondition any `json:"RuleCondition"`
	Assertions    []struct {
		Assert            any    `json:"Assert"`
		AssertDescription string `json:"AssertDescription"`
	} `json:"Assertions"`
}

type resource struct {
	Type                string   `json:"Type"`
	DependsOn           []string `json:"DependsOn"`
	DeletionPolicy      string   `json:"DeletionPolicy"`
	UpdateReplacePolicy string   `json:"UpdateReplacePolicy"`
	Properties          object   `json:"Properties"`
}

// loadTemplate reads path strictly: a key the structs above do not know
// (a misspelt section, a Condition the tests ignore) fails.
func loadTemplate(t testing.TB, path string) *template {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseTemplate(t, data)
}

func parseTemplate(t testing.TB, data []byte) *template {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	var tpl template
	if err := dec.Decode(&tpl); err != nil {
		t.Fatalf("%s: %v", templateFile, err)
	}
	if dec.More() {
		t.Fatalf("%s: data after the template object", templateFile)
	}
	return &tpl
}

// stack is the template with parameter values chosen: what CloudFormation
// evaluates.
type stack struct {
	tpl    *template
	params map[string]string
}

// newStack takes each parameter's default, overridden by overrides, and
// checks every value against the parameter's constraints, as
// CloudFormation does before it creates anything.
func newStack(tpl *template, overrides map[string]string) (*stack, error) {
	params := map[string]string{}
	for name, p := range tpl.Parameters {
		switch d := p.Default.(type) {
		case nil:
		case string:
			params[name] = d
		case float64:
			params[name] = strconv.FormatFloat(d, 'f', -1, 64)
		default:
			return nil, fmt.Errorf("parameter %s: default %v is neither string nor number", name, d)
		}
	}
	for name, v := range overrides {
		if _, ok := tpl.Parameters[name]; !ok {
			return nil, fmt.Errorf("no parameter %s", name)
		}
		params[name] = v
	}
	for name, p := range tpl.Parameters {
		v, ok := params[name]
		if !ok {
			return nil, fmt.Errorf("parameter %s has no value", name)
		}
		if err := p.check(v); err != nil {
			return nil, fmt.Errorf("parameter %s=%q: %w", name, v, err)
		}
	}
	return &stack{tpl: tpl, params: params}, nil
}

func (p parameter) check(v string) error {
	switch p.Type {
	case "String":
	case "Number":
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("not a number")
		}
		if p.MinValue != nil && n < *p.MinValue || p.MaxValue != nil && n > *p.MaxValue {
			return fmt.Errorf("out of range")
		}
	default:
		return fmt.Errorf("parameter type %q is not one the tests know", p.Type)
	}
	if len(p.AllowedValues) > 0 && !slices.Contains(p.AllowedValues, v) {
		return fmt.Errorf("not one of %q", p.AllowedValues)
	}
	if p.AllowedPattern != "" {
		// CloudFormation matches the whole value.
		re, err := regexp.Compile(`^(?:` + p.AllowedPattern + `)$`)
		if err != nil {
			return fmt.Errorf("AllowedPattern: %w", err)
		}
		if !re.MatchString(v) {
			return fmt.Errorf("does not match %s", p.AllowedPattern)
		}
	}
	return nil
}

// resolve evaluates the intrinsic functions in v.
func (s *stack) resolve(v any) (any, error) {
	switch v := v.(type) {
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			r, err := s.resolve(e)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case object:
		if len(v) == 1 {
			for k, arg := range v {
				if k == "Ref" || strings.HasPrefix(k, "Fn::") {
					return s.intrinsic(k, arg)
				}
			}
		}
		out := make(object, len(v))
		for k, e := range v {
			r, err := s.resolve(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = r
		}
		return out, nil
	}
	return v, nil
}

func (s *stack) intrinsic(fn string, arg any) (any, error) {
	switch fn {
	case "Ref":
		name, ok := arg.(string)
		if !ok {
			return nil, fmt.Errorf("Ref of %v", arg)
		}
		return s.ref(name)
	case "Fn::Sub":
		text, ok := arg.(string)
		if !ok {
			return nil, fmt.Errorf("Fn::Sub with variables is not supported by these tests: %v", arg)
		}
		return s.sub(text)
	case "Fn::GetAtt":
		parts, ok := arg.([]any)
		if !ok || len(parts) != 2 {
			return nil, fmt.Errorf("Fn::GetAtt wants [resource, attribute], got %v", arg)
		}
		res, _ := parts[0].(string)
		attr, _ := parts[1].(string)
		return s.getAtt(res, attr)
	case "Fn::Equals":
		args, err := s.resolveArgs(fn, arg, 2)
		if err != nil {
			return nil, err
		}
		return fmt.Sprint(args[0]) == fmt.Sprint(args[1]), nil
	case "Fn::Not", "Fn::Or", "Fn::And":
		args, err := s.resolveArgs(fn, arg, -1)
		if err != nil {
			return nil, err
		}
		bools := make([]bool, len(args))
		for i, a := range args {
			b, ok := a.(bool)
			if !ok {
				return nil, fmt.Errorf("%s: argument %v is not a condition", fn, a)
			}
			bools[i] = b
		}
		switch fn {
		case "Fn::Not":
			if len(bools) != 1 {
				return nil, fmt.Errorf("Fn::Not wants one condition")
			}
			return !bools[0], nil
		case "Fn::Or":
			return slices.Contains(bools, true), nil
		default:
			return !slices.Contains(bools, false), nil
		}
	}
	return nil, fmt.Errorf("intrinsic function %s is not supported by these tests", fn)
}

func (s *stack) resolveArgs(fn string, arg any, n int) ([]any, error) {
	list, ok := arg.([]any)
	if !ok || n >= 0 && len(list) != n {
		return nil, fmt.Errorf("%s: bad arguments %v", fn, arg)
	}
	out, err := s.resolve(list)
	if err != nil {
		return nil, err
	}
	return out.([]any), nil
}

// ref returns a parameter's value or a resource's physical ID: for a table
// its name, as CloudFormation's Ref does, for others a placeholder.
func (s *stack) ref(name string) (any, error) {
	if v, ok := s.params[name]; ok {
		return v, nil
	}
	if v, ok := pseudoParams[name]; ok {
		return v, nil
	}
	res, ok := s.tpl.Resources[name]
	if !ok {
		return nil, fmt.Errorf("Ref to unknown name %s", name)
	}
	if res.Type == "AWS::DynamoDB::Table" {
		return s.resolve(res.Properties["TableName"])
	}
	return "physical-id-of-" + name, nil
}

func (s *stack) getAtt(name, attr string) (any, error) {
	res, ok := s.tpl.Resources[name]
	if !ok {
		return nil, fmt.Errorf("Fn::GetAtt of unknown resource %s", name)
	}
	if !slices.Contains(getAtts[res.Type], attr) {
		return nil, fmt.Errorf("Fn::GetAtt %s.%s: %s has no attribute %s the tests know", name, attr, res.Type, attr)
	}
	return attrValue(name, attr), nil
}

// attrValue is the placeholder for a resource attribute, so that tests can
// tell which resource a resolved string points at.
func attrValue(name, attr string) string { return "attribute-" + name + "." + attr }

var subVar = regexp.MustCompile(`\$\{([^}]*)\}`)

func (s *stack) sub(text string) (string, error) {
	var err error
	out := subVar.ReplaceAllStringFunc(text, func(m string) string {
		name := m[2 : len(m)-1]
		if strings.HasPrefix(name, "!") { // ${!Literal} stays ${Literal}
			return "${" + name[1:] + "}"
		}
		var v any
		var e error
		if res, attr, ok := strings.Cut(name, "."); ok && !strings.HasPrefix(name, "AWS::") {
			v, e = s.getAtt(res, attr)
		} else {
			v, e = s.ref(name)
		}
		if e != nil {
			err = fmt.Errorf("Fn::Sub %q: %w", text, e)
			return ""
		}
		return fmt.Sprint(v)
	})
	return out, err
}

// resolved returns a resource's properties with every intrinsic evaluated.
func (s *stack) resolved(t testing.TB, name string) object {
	t.Helper()
	res, ok := s.tpl.Resources[name]
	if !ok {
		t.Fatalf("no resource %s", name)
	}
	props, err := s.resolve(res.Properties)
	if err != nil {
		t.Fatalf("resource %s: %v", name, err)
	}
	return props.(object)
}

// rulesPass evaluates the Rules section: false (with the failed
// assertion's description) when CloudFormation would refuse the stack.
func (s *stack) rulesPass() (bool, string, error) {
	for _, name := range slices.Sorted(maps.Keys(s.tpl.Rules)) {
		r := s.tpl.Rules[name]
		if r.RuleCondition != nil {
			return false, "", fmt.Errorf("rule %s: RuleCondition is not supported by these tests", name)
		}
		for _, a := range r.Assertions {
			v, err := s.resolve(a.Assert)
			if err != nil {
				return false, "", fmt.Errorf("rule %s: %w", name, err)
			}
			ok, isBool := v.(bool)
			if !isBool {
				return false, "", fmt.Errorf("rule %s: assertion is not a condition", name)
			}
			if !ok {
				return false, a.AssertDescription, nil
			}
		}
	}
	return true, "", nil
}

// functionEnv returns the environment SAM gives a function: the Globals'
// variables merged with the function's own (the function's win).
func (s *stack) functionEnv(t testing.TB, name string) map[string]string {
	t.Helper()
	env := map[string]string{}
	add := func(where string, fn object) {
		e, _ := fn["Environment"].(object)
		vars, _ := e["Variables"].(object)
		for k, v := range vars {
			r, err := s.resolve(v)
			if err != nil {
				t.Fatalf("%s: variable %s: %v", where, k, err)
			}
			str, ok := r.(string)
			if !ok {
				t.Fatalf("%s: variable %s resolves to %T, want a string", where, k, r)
			}
			env[k] = str
		}
	}
	add("Globals", s.tpl.Globals.Function)
	add(name, s.tpl.Resources[name].Properties)
	return env
}

// functionProp returns a function property, falling back to Globals.
func (s *stack) functionProp(t testing.TB, name, prop string) any {
	t.Helper()
	v, ok := s.tpl.Resources[name].Properties[prop]
	if !ok {
		v = s.tpl.Globals.Function[prop]
	}
	r, err := s.resolve(v)
	if err != nil {
		t.Fatalf("%s.%s: %v", name, prop, err)
	}
	return r
}

// resourcesOfType returns the logical IDs of the resources of a type,
// sorted.
func (tpl *template) resourcesOfType(typ string) []string {
	var names []string
	for name, r := range tpl.Resources {
		if r.Type == typ {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// references collects the names v refers to with Ref and Fn::Sub.
func references(v any, into map[string]bool) {
	data, _ := json.Marshal(v)
	var doc any
	_ = json.Unmarshal(data, &doc)
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case []any:
			for _, e := range v {
				walk(e)
			}
		case object:
			for k, e := range v {
				switch str, _ := e.(string); k {
				case "Ref":
					into[str] = true
				case "Fn::Sub":
					for _, m := range subVar.FindAllStringSubmatch(str, -1) {
						into[m[1]] = true
					}
				}
				walk(e)
			}
		}
	}
	walk(doc)
}

// decodeStrict converts a resolved JSON value into dst, failing on fields
// dst does not have.
func decodeStrict(v any, dst any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	return dec.Decode(dst)
}
