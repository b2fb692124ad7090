package template

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Options are the deployment choices a template is resolved with.
type Options struct {
	// ParameterOverrides set parameter values, as `sam deploy
	// --parameter-overrides Key=Value` does. A key the template does not
	// declare is an error.
	ParameterOverrides map[string]string
	// StackName is AWS::StackName. Empty means "local".
	StackName string
	// Region is AWS::Region. Empty means "us-east-1".
	Region string
	// AccountID is AWS::AccountId. Empty means "123456789012".
	AccountID string
	// APIID is the id a Ref to the WebSocket API resolves to. Empty means
	// "local".
	APIID string
}

// Resource is one entry of the template's Resources, as written.
type Resource struct {
	Type       string
	Properties map[string]any
	Condition  string
	// Metadata is the resource's Metadata attribute, as written: where
	// `sam build` reads how to build a function.
	Metadata map[string]any

	// generatedBy is the SAM resource whose expansion made this one;
	// empty for the template's own resources.
	generatedBy string
}

// ParseOverrides reads `Key=Value` pairs (the form `sam deploy
// --parameter-overrides` takes; SAM's ParameterKey=K,ParameterValue=V
// form is accepted too).
func ParseOverrides(pairs []string) (map[string]string, error) {
	out := make(map[string]string, len(pairs))
	for _, p := range pairs {
		if strings.HasPrefix(p, "ParameterKey=") {
			k, v, ok := strings.Cut(strings.TrimPrefix(p, "ParameterKey="), ",ParameterValue=")
			if !ok {
				return nil, &Error{Resource: "Parameters", Err: fmt.Errorf("override %q: want ParameterKey=K,ParameterValue=V", p)}
			}
			out[k] = v
			continue
		}
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, &Error{Resource: "Parameters", Err: fmt.Errorf("override %q: want Key=Value", p)}
		}
		out[k] = v
	}
	return out, nil
}

// Load reads and resolves the template at path. Relative CodeUri paths are
// taken from the template's folder, as SAM does.
func Load(path string, opts Options) (*App, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	abs, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	return Parse(data, abs, opts)
}

// Parse resolves a template held in memory; dir is the folder relative
// code paths start from.
func Parse(data []byte, dir string, opts Options) (*App, error) {
	doc, err := decode(data)
	if err != nil {
		return nil, err
	}
	if opts.StackName == "" {
		opts.StackName = "local"
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.AccountID == "" {
		opts.AccountID = "123456789012"
	}
	if opts.APIID == "" {
		opts.APIID = "local"
	}
	partition, suffix := partitionOf(opts.Region)
	s := &stack{
		pseudo: map[string]string{
			"AWS::Region":    opts.Region,
			"AWS::AccountId": opts.AccountID,
			"AWS::StackName": opts.StackName,
			"AWS::StackId":   "arn:" + partition + ":cloudformation:" + opts.Region + ":" + opts.AccountID + ":stack/" + opts.StackName + "/" + localStackUUID,
			"AWS::Partition": partition,
			"AWS::URLSuffix": suffix,
		},
		condCache: map[string]bool{},
		condBusy:  map[string]bool{},
		resources: map[string]*Resource{},
	}
	if err := s.loadParameters(doc["Parameters"], opts.ParameterOverrides); err != nil {
		return nil, err
	}
	if m, ok := doc["Mappings"].(map[string]any); ok {
		s.mappings = m
	}
	if c, ok := doc["Conditions"]; ok {
		m, ok := c.(map[string]any)
		if !ok {
			return nil, errorf("Conditions", "", "want an object, got %s", describe(c))
		}
		s.conditions = m
	}
	if err := s.checkRules(doc["Rules"]); err != nil {
		return nil, err
	}
	rawRes, ok := doc["Resources"].(map[string]any)
	if !ok || len(rawRes) == 0 {
		return nil, errorf("Resources", "", "the template declares no resources")
	}
	ids := make([]string, 0, len(rawRes))
	for id := range rawRes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	all := map[string]*Resource{}
	for _, id := range ids {
		m, ok := rawRes[id].(map[string]any)
		if !ok {
			return nil, errorf(id, "", "want an object, got %s", describe(rawRes[id]))
		}
		r := &Resource{}
		if r.Type, ok = m["Type"].(string); !ok || r.Type == "" {
			return nil, errorf(id, "Type", "missing")
		}
		if p, has := m["Properties"]; has {
			if r.Properties, ok = p.(map[string]any); !ok {
				return nil, errorf(id, "Properties", "want an object, got %s", describe(p))
			}
		}
		if r.Properties == nil {
			r.Properties = map[string]any{}
		}
		if c, has := m["Condition"]; has {
			if r.Condition, ok = c.(string); !ok {
				return nil, errorf(id, "Condition", "want a condition name")
			}
		}
		if md, has := m["Metadata"]; has {
			if r.Metadata, ok = md.(map[string]any); !ok {
				return nil, errorf(id, "Metadata", "want an object, got %s", describe(md))
			}
		}
		all[id] = r
	}
	// Resources whose condition is false do not exist.
	for _, id := range ids {
		r := all[id]
		if r.Condition != "" {
			on, err := s.condition(r.Condition, id, "Condition")
			if err != nil {
				return nil, err
			}
			if !on {
				continue
			}
		}
		s.resources[id] = r
	}
	if g, ok := doc["Globals"]; ok {
		if err := applyGlobals(g, s.resources); err != nil {
			return nil, err
		}
	}
	a := &App{StackName: opts.StackName, Region: opts.Region, AccountID: opts.AccountID, APIID: opts.APIID, dir: dir, stack: s}
	s.physical = a.physicalName
	s.attribute = a.attribute
	if err := a.expandWebSocketAPIs(); err != nil {
		return nil, err
	}
	if err := a.build(); err != nil {
		return nil, err
	}
	if err := a.outputs(doc["Outputs"]); err != nil {
		return nil, err
	}
	return a, nil
}

// localStackUUID ends AWS::StackId, where CloudFormation puts the
// stack's UUID: fixed, so the ARN is the same on every start.
const localStackUUID = "00000000-0000-0000-0000-000000000000"

// partitionOf returns AWS::Partition and AWS::URLSuffix for a Region.
func partitionOf(region string) (partition, urlSuffix string) {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn", "amazonaws.com.cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov", "amazonaws.com"
	case strings.HasPrefix(region, "us-iso-"):
		return "aws-iso", "c2s.ic.gov"
	case strings.HasPrefix(region, "us-isob-"):
		return "aws-iso-b", "sc2s.sgov.gov"
	}
	return "aws", "amazonaws.com"
}

type parameter struct {
	Type                  string
	Default               any
	AllowedValues         []any
	AllowedPattern        string
	MinLength, MaxLength  *int
	MinValue, MaxValue    *float64
	ConstraintDescription string
}

func (s *stack) loadParameters(raw any, overrides map[string]string) error {
	s.params = map[string]string{}
	s.paramLists = map[string]bool{}
	decl := map[string]any{}
	if raw != nil {
		m, ok := raw.(map[string]any)
		if !ok {
			return errorf("Parameters", "", "want an object, got %s", describe(raw))
		}
		decl = m
	}
	for k := range overrides {
		if _, ok := decl[k]; !ok {
			return errorf("Parameters", k, "overridden, but the template declares no such parameter")
		}
	}
	names := make([]string, 0, len(decl))
	for n := range decl {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		var p parameter
		b, _ := json.Marshal(decl[name])
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber() // a Number default such as 5 keeps its text
		if err := dec.Decode(&p); err != nil {
			return errorf("Parameters", name, "%v", err)
		}
		v, ok := overrides[name]
		if !ok {
			if p.Default == nil {
				return errorf("Parameters", name, "has no Default: give a value with --parameter-overrides %s=VALUE", name)
			}
			d, err := scalarString(p.Default)
			if err != nil {
				if list, isList := p.Default.([]any); isList {
					parts := make([]string, 0, len(list))
					for _, e := range list {
						str, _ := scalarString(e)
						parts = append(parts, str)
					}
					d = strings.Join(parts, ",")
				} else {
					return errorf("Parameters", name+".Default", "%v", err)
				}
			}
			v = d
		}
		if err := p.check(v); err != nil {
			return errorf("Parameters", name, "value %q: %v", v, err)
		}
		s.params[name] = v
		if _, ok := listElement(p.Type); ok {
			s.paramLists[name] = true
		}
	}
	return nil
}

// listElement is the element type of a list parameter type:
// "String" for CommaDelimitedList, "Number" for List<Number>.
func listElement(typ string) (string, bool) {
	if typ == "CommaDelimitedList" {
		return "String", true
	}
	if e, ok := strings.CutPrefix(typ, "List<"); ok && strings.HasSuffix(e, ">") {
		return strings.TrimSuffix(e, ">"), true
	}
	return "", false
}

// check applies the parameter's type and constraints to v, as
// CloudFormation does: a list parameter's constraints apply to each of
// its comma-separated elements.
func (p parameter) check(v string) error {
	if strings.HasPrefix(p.Type, "AWS::SSM::") {
		return errors.New("SSM parameter types cannot be resolved locally: override the value")
	}
	if elem, ok := listElement(p.Type); ok {
		one := p
		one.Type = elem
		for i, e := range strings.Split(v, ",") {
			if err := one.check(strings.TrimSpace(e)); err != nil {
				return fmt.Errorf("element %d: %w", i, err)
			}
		}
		return nil
	}
	if len(p.AllowedValues) > 0 {
		ok := false
		for _, a := range p.AllowedValues {
			if s, _ := scalarString(a); s == v {
				ok = true
			}
		}
		if !ok {
			return fmt.Errorf("not one of AllowedValues %v", p.AllowedValues)
		}
	}
	if p.AllowedPattern != "" {
		re, err := regexp.Compile("^(?:" + p.AllowedPattern + ")$")
		if err != nil {
			return fmt.Errorf("AllowedPattern: %w", err)
		}
		if !re.MatchString(v) {
			return fmt.Errorf("does not match AllowedPattern %s", p.AllowedPattern)
		}
	}
	if p.MinLength != nil && len(v) < *p.MinLength {
		return fmt.Errorf("shorter than MinLength %d", *p.MinLength)
	}
	if p.MaxLength != nil && len(v) > *p.MaxLength {
		return fmt.Errorf("longer than MaxLength %d", *p.MaxLength)
	}
	if p.Type == "Number" || p.MinValue != nil || p.MaxValue != nil {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return errors.New("not a number")
		}
		if p.MinValue != nil && f < *p.MinValue {
			return fmt.Errorf("below MinValue %v", *p.MinValue)
		}
		if p.MaxValue != nil && f > *p.MaxValue {
			return fmt.Errorf("above MaxValue %v", *p.MaxValue)
		}
	}
	return nil
}

// applyGlobals merges SAM's Globals into the resources they apply to:
// scalars and lists in the resource win, maps are merged key by key (how
// SAM merges Environment.Variables).
func applyGlobals(raw any, resources map[string]*Resource) error {
	g, ok := raw.(map[string]any)
	if !ok {
		return errorf("Globals", "", "want an object, got %s", describe(raw))
	}
	for section, v := range g {
		typ := map[string]string{"Function": "AWS::Serverless::Function", "Api": "AWS::Serverless::Api",
			"HttpApi": "AWS::Serverless::HttpApi", "SimpleTable": "AWS::Serverless::SimpleTable",
			"StateMachine": "AWS::Serverless::StateMachine", "LayerVersion": "AWS::Serverless::LayerVersion",
			"WebSocketApi": webSocketAPIType}[section]
		if typ == "" {
			return errorf("Globals", section, "not a Globals section SAM knows")
		}
		props, ok := v.(map[string]any)
		if !ok {
			return errorf("Globals", section, "want an object, got %s", describe(v))
		}
		if typ == webSocketAPIType {
			for _, k := range sortedKeys(props) {
				if !webSocketAPIGlobals[k] {
					return errorf("Globals", section+"."+k, "not a property Globals can set for %s", typ)
				}
			}
		}
		for _, r := range resources {
			if r.Type == typ {
				r.Properties = mergeGlobal(props, r.Properties)
			}
		}
	}
	return nil
}

func mergeGlobal(global, local map[string]any) map[string]any {
	out := make(map[string]any, len(global)+len(local))
	for k, v := range global {
		out[k] = v
	}
	for k, v := range local {
		gm, gok := out[k].(map[string]any)
		lm, lok := v.(map[string]any)
		if gok && lok && !isIntrinsic(lm) && !isIntrinsic(gm) {
			out[k] = mergeGlobal(gm, lm)
			continue
		}
		out[k] = v
	}
	return out
}

func isIntrinsic(m map[string]any) bool {
	if len(m) != 1 {
		return false
	}
	for k := range m {
		return k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::")
	}
	return false
}

// checkRules evaluates the template's Rules as CloudFormation does before
// it creates anything: an assertion that fails refuses the parameters.
func (s *stack) checkRules(raw any) error {
	if raw == nil {
		return nil
	}
	rules, ok := raw.(map[string]any)
	if !ok {
		return errorf("Rules", "", "want an object, got %s", describe(raw))
	}
	names := make([]string, 0, len(rules))
	for n := range rules {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		rule, ok := rules[name].(map[string]any)
		if !ok {
			return errorf("Rules", name, "want an object")
		}
		if c, has := rule["RuleCondition"]; has {
			v, err := s.resolve(c, "Rules", name+".RuleCondition")
			if err != nil {
				return err
			}
			if b, ok := v.(bool); !ok || !b {
				continue
			}
		}
		asserts, _ := rule["Assertions"].([]any)
		for i, a := range asserts {
			am, _ := a.(map[string]any)
			field := fmt.Sprintf("%s.Assertions[%d]", name, i)
			v, err := s.resolve(am["Assert"], "Rules", field+".Assert")
			if err != nil {
				return err
			}
			if b, ok := v.(bool); !ok || !b {
				desc, _ := am["AssertDescription"].(string)
				if desc == "" {
					desc = "the assertion is false for these parameters"
				}
				return errorf("Rules", field, "%s", desc)
			}
		}
	}
	return nil
}
