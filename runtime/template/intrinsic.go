package template

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// noValue is what Ref AWS::NoValue resolves to: the property it sits in is
// removed, as CloudFormation does.
type noValueT struct{}

var noValue = noValueT{}

// stack resolves intrinsic functions against a template's parameters,
// conditions and resources.
type stack struct {
	params     map[string]string
	paramLists map[string]bool // CommaDelimitedList and List<...> parameters
	pseudo     map[string]string
	conditions map[string]any
	condCache  map[string]bool
	condBusy   map[string]bool
	mappings   map[string]any
	resources  map[string]*Resource
	// aliases are the references SAM rewrites to a resource it generates:
	// "Api.Stage" is the stage of an AWS::Serverless::WebSocketApi.
	aliases map[string]string
	// physical and attribute give the local value of Ref and Fn::GetAtt
	// on a resource.
	physical  func(id string) string
	attribute func(id, attr string) (string, error)
}

// resolve returns v with every intrinsic function evaluated. where names
// the resource and field for errors.
func (s *stack) resolve(v any, res, field string) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for k, arg := range x {
				if k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::") {
					return s.intrinsic(k, arg, res, field)
				}
			}
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			r, err := s.resolve(e, res, join(field, k))
			if err != nil {
				return nil, err
			}
			if r != noValue {
				out[k] = r
			}
		}
		return out, nil
	case []any:
		out := make([]any, 0, len(x))
		for i, e := range x {
			r, err := s.resolve(e, res, field+"["+strconv.Itoa(i)+"]")
			if err != nil {
				return nil, err
			}
			if r != noValue {
				out = append(out, r)
			}
		}
		return out, nil
	default:
		return v, nil
	}
}

func join(field, k string) string {
	if field == "" {
		return k
	}
	return field + "." + k
}

func (s *stack) intrinsic(fn string, arg any, res, field string) (any, error) {
	where := join(field, fn)
	switch fn {
	case "Ref":
		name, ok := arg.(string)
		if !ok {
			return nil, errorf(res, where, "want a name, got %s", describe(arg))
		}
		return s.ref(name, res, where)
	case "Condition":
		name, ok := arg.(string)
		if !ok {
			return nil, errorf(res, where, "want a condition name, got %s", describe(arg))
		}
		return s.condition(name, res, where)
	case "Fn::GetAtt":
		var parts []string
		switch a := arg.(type) {
		case string:
			id, attr, ok := strings.Cut(a, ".")
			if !ok {
				return nil, errorf(res, where, "%q: want Resource.Attribute", a)
			}
			parts = []string{id, attr}
		case []any:
			r, err := s.resolve(a, res, where)
			if err != nil {
				return nil, err
			}
			for _, p := range r.([]any) {
				ps, ok := p.(string)
				if !ok {
					return nil, errorf(res, where, "want [Resource, Attribute] strings, got %s", describe(p))
				}
				parts = append(parts, ps)
			}
		}
		if len(parts) != 2 {
			return nil, errorf(res, where, "want [Resource, Attribute]")
		}
		return s.getAtt(parts[0], parts[1], res, where)
	case "Fn::Sub":
		return s.sub(arg, res, where)
	case "Fn::Join":
		a, err := s.args(arg, 2, res, where)
		if err != nil {
			return nil, err
		}
		sep, ok := a[0].(string)
		if !ok {
			return nil, errorf(res, where, "the delimiter must be a string, got %s", describe(a[0]))
		}
		list, ok := a[1].([]any)
		if !ok {
			return nil, errorf(res, where, "the values must be a list, got %s", describe(a[1]))
		}
		parts := make([]string, 0, len(list))
		for _, e := range list {
			str, err := scalarString(e)
			if err != nil {
				return nil, errorf(res, where, "%v", err)
			}
			parts = append(parts, str)
		}
		return strings.Join(parts, sep), nil
	case "Fn::If":
		raw, ok := arg.([]any)
		if !ok || len(raw) != 3 {
			return nil, errorf(res, where, "want [Condition, ValueIfTrue, ValueIfFalse]")
		}
		name, ok := raw[0].(string)
		if !ok {
			return nil, errorf(res, where, "the condition must be a name, got %s", describe(raw[0]))
		}
		b, err := s.condition(name, res, where)
		if err != nil {
			return nil, err
		}
		if b {
			return s.resolve(raw[1], res, where)
		}
		return s.resolve(raw[2], res, where)
	case "Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or":
		return s.boolFn(fn, arg, res, where)
	case "Fn::Select":
		a, err := s.args(arg, 2, res, where)
		if err != nil {
			return nil, err
		}
		idxText, err := scalarString(a[0])
		if err != nil {
			return nil, errorf(res, where, "index: %v", err)
		}
		idx, err := strconv.Atoi(idxText)
		list, ok := a[1].([]any)
		if err != nil || !ok || idx < 0 || idx >= len(list) {
			return nil, errorf(res, where, "index %q out of the list", idxText)
		}
		return list[idx], nil
	case "Fn::Split":
		a, err := s.args(arg, 2, res, where)
		if err != nil {
			return nil, err
		}
		sep, ok1 := a[0].(string)
		str, ok2 := a[1].(string)
		if !ok1 || !ok2 || sep == "" {
			return nil, errorf(res, where, "want [delimiter, string]")
		}
		var out []any
		for _, p := range strings.Split(str, sep) {
			out = append(out, p)
		}
		return out, nil
	case "Fn::FindInMap":
		a, err := s.args(arg, 3, res, where)
		if err != nil {
			return nil, err
		}
		cur := any(s.mappings)
		for _, k := range a {
			ks, err := scalarString(k)
			if err != nil {
				return nil, errorf(res, where, "%v", err)
			}
			m, ok := cur.(map[string]any)
			if !ok {
				return nil, errorf(res, where, "no mapping entry %q", ks)
			}
			if cur, ok = m[ks]; !ok {
				return nil, errorf(res, where, "no mapping entry %q", ks)
			}
		}
		return s.resolve(cur, res, where)
	case "Fn::Base64":
		return nil, errorf(res, where, "not supported locally")
	default:
		return nil, errorf(res, where, "%s is not supported locally", fn)
	}
}

// args resolves a list argument of exactly n elements.
func (s *stack) args(arg any, n int, res, where string) ([]any, error) {
	list, ok := arg.([]any)
	if !ok || len(list) != n {
		return nil, errorf(res, where, "want a list of %d arguments, got %s", n, describe(arg))
	}
	r, err := s.resolve(list, res, where)
	if err != nil {
		return nil, err
	}
	out := r.([]any)
	if len(out) != n {
		return nil, errorf(res, where, "an argument resolved to AWS::NoValue")
	}
	return out, nil
}

func (s *stack) ref(name, res, where string) (any, error) {
	switch name {
	case "AWS::NoValue":
		return noValue, nil
	case "AWS::NotificationARNs":
		// The SNS topics stack events go to: none locally, an empty list.
		return []any{}, nil
	}
	if v, ok := s.pseudo[name]; ok {
		return v, nil
	}
	if v, ok := s.params[name]; ok {
		if s.paramLists[name] {
			var out []any
			for _, p := range strings.Split(v, ",") {
				out = append(out, strings.TrimSpace(p))
			}
			return out, nil
		}
		return v, nil
	}
	if _, ok := s.resources[name]; ok {
		return s.physical(name), nil
	}
	if id, ok := s.aliases[name]; ok {
		return s.physical(id), nil
	}
	return nil, errorf(res, where, "%q is neither a parameter nor a resource", name)
}

func (s *stack) getAtt(id, attr, res, where string) (any, error) {
	if _, ok := s.resources[id]; !ok {
		return nil, errorf(res, where, "no resource %q", id)
	}
	v, err := s.attribute(id, attr)
	if err != nil {
		return nil, errorf(res, where, "%s.%s: %v", id, attr, err)
	}
	return v, nil
}

var subVar = regexp.MustCompile(`\$\{([^}]*)\}`)

func (s *stack) sub(arg any, res, where string) (any, error) {
	var text string
	vars := map[string]any{}
	switch a := arg.(type) {
	case string:
		text = a
	case []any:
		if len(a) != 2 {
			return nil, errorf(res, where, "want a string or [string, {variables}]")
		}
		t, ok := a[0].(string)
		if !ok {
			return nil, errorf(res, where, "the text must be a string, got %s", describe(a[0]))
		}
		text = t
		m, ok := a[1].(map[string]any)
		if !ok {
			return nil, errorf(res, where, "the variables must be an object, got %s", describe(a[1]))
		}
		r, err := s.resolve(m, res, where)
		if err != nil {
			return nil, err
		}
		vars = r.(map[string]any)
	default:
		return nil, errorf(res, where, "want a string or [string, {variables}], got %s", describe(arg))
	}
	var firstErr error
	out := subVar.ReplaceAllStringFunc(text, func(m string) string {
		name := m[2 : len(m)-1]
		if strings.HasPrefix(name, "!") {
			return "${" + name[1:] + "}" // ${!Literal} escapes
		}
		var v any
		var err error
		if x, ok := vars[name]; ok {
			v = x
		} else if id, ok := s.aliases[name]; ok {
			v = s.physical(id)
		} else if id, attr, ok := strings.Cut(name, "."); ok && s.resources[id] != nil {
			v, err = s.getAtt(id, attr, res, where)
		} else {
			v, err = s.ref(name, res, where)
		}
		if err == nil {
			var str string
			if str, err = scalarString(v); err == nil {
				return str
			}
			err = errorf(res, where, "${%s}: %v", name, err)
		}
		if firstErr == nil {
			firstErr = err
		}
		return ""
	})
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

func (s *stack) condition(name, res, where string) (bool, error) {
	if b, ok := s.condCache[name]; ok {
		return b, nil
	}
	raw, ok := s.conditions[name]
	if !ok {
		return false, errorf(res, where, "no condition %q", name)
	}
	if s.condBusy[name] {
		return false, errorf("Conditions", name, "refers to itself")
	}
	s.condBusy[name] = true
	defer delete(s.condBusy, name)
	v, err := s.resolve(raw, "Conditions", name)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, errorf("Conditions", name, "does not evaluate to true or false")
	}
	s.condCache[name] = b
	return b, nil
}

func (s *stack) boolFn(fn string, arg any, res, where string) (any, error) {
	list, ok := arg.([]any)
	if !ok {
		return nil, errorf(res, where, "want a list, got %s", describe(arg))
	}
	r, err := s.resolve(list, res, where)
	if err != nil {
		return nil, err
	}
	vals := r.([]any)
	if fn == "Fn::Equals" {
		if len(vals) != 2 {
			return nil, errorf(res, where, "want two values")
		}
		a, _ := json.Marshal(normalise(vals[0]))
		b, _ := json.Marshal(normalise(vals[1]))
		return string(a) == string(b), nil
	}
	bools := make([]bool, 0, len(vals))
	for _, v := range vals {
		b, ok := v.(bool)
		if !ok {
			return nil, errorf(res, where, "want conditions, got %s", describe(v))
		}
		bools = append(bools, b)
	}
	switch fn {
	case "Fn::Not":
		if len(bools) != 1 {
			return nil, errorf(res, where, "want one condition")
		}
		return !bools[0], nil
	case "Fn::And":
		for _, b := range bools {
			if !b {
				return false, nil
			}
		}
		return true, nil
	default: // Fn::Or
		for _, b := range bools {
			if b {
				return true, nil
			}
		}
		return false, nil
	}
}

// normalise makes numbers and their text compare equal, as
// CloudFormation compares parameter values (all strings) with literals.
func normalise(v any) any {
	switch x := v.(type) {
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	}
	return v
}

// scalarString is the text of a string, number or boolean value.
func scalarString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case bool:
		return strconv.FormatBool(x), nil
	default:
		return "", fmt.Errorf("want a string, got %s", describe(v))
	}
}

func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return "an object with " + strings.Join(keys, ", ")
	case []any:
		return fmt.Sprintf("a list of %d", len(x))
	case string:
		return strconv.Quote(x)
	default:
		return fmt.Sprint(x)
	}
}

var errNoAttribute = errors.New("not an attribute the local runtime knows")
