# Writes tests/unit/jinja_cases.h: templates and what Python jinja2 3.1 renders for them
# (trim_blocks, lstrip_blocks, loopcontrols, tojson and raise_exception as transformers).
#   python3 tests/unit/jinja_cases.py
import json, jinja2, jinja2.ext, datetime
from jinja2.sandbox import ImmutableSandboxedEnvironment
def raise_exception(m): raise jinja2.exceptions.TemplateError(m)
def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
NOW = datetime.datetime(2024, 7, 26, 10, 40, tzinfo=datetime.timezone.utc)
env.globals["strftime_now"] = lambda f: NOW.strftime(f)
V = {"messages": [{"role": "system", "content": " Sys \n"}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo", "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1, "y": "é"}}}]}],
     "n": 7, "s": "  Hello, World  ", "xs": [3, 1, 2, 3], "d": {"b": 2, "a": 1}, "t": True, "none": None}
cases = [
 ("trim_blocks", "{% if t %}\nA\n{% endif %}\nB\n"),
 ("lstrip_blocks", "x\n    {% if t %}\n    y\n    {% endif %}\nz"),
 ("minus", "a   {%- if t -%}   b   {%- endif -%}   c"),
 ("expr minus", "a  {{- n -}}  b"),
 ("comment", "a {# c #}\nb{#- c -#}  c"),
 ("for loop vars", "{% for m in messages %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}"),
 ("for else", "{% for x in [] %}x{% else %}empty{% endfor %}"),
 ("for if", "{% for x in xs if x > 1 %}{{ x }}{{ loop.index }},{% endfor %}"),
 ("break continue", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x > 4 %}{% break %}{% endif %}{{ x }}{% endfor %}"),
 ("elif", "{% for x in [1,2,3] %}{% if x == 1 %}a{% elif x == 2 %}b{% else %}c{% endif %}{% endfor %}"),
 ("set scope", "{% set y = 1 %}{% for x in xs %}{% set y = x %}{% endfor %}{{ y }}"),
 ("namespace", "{% set ns = namespace(c=0, s='') %}{% for x in xs %}{% set ns.c = ns.c + x %}{% endfor %}{{ ns.c }}"),
 ("block set", "{% set b %}[{{ n }}]{% endset %}{{ b }}{{ b }}"),
 ("macro", "{% macro f(a, b='B', c=none) %}{{ a }}-{{ b }}-{{ c is none }}{% endmacro %}{{ f(1) }} {{ f(2, c=3) }}"),
 ("call block", "{% macro w(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call w('b') %}in {{ n }}{% endcall %}"),
 ("filter block", "{% filter upper %}abc {{ n }}{% endfilter %}"),
 ("arith", "{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 7 / 2 }} {{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 1.5 + 1 }} {{ 4 / 2 }}"),
 ("concat", "{{ 'a' ~ n ~ none ~ t }}"),
 ("in", "{{ 'a' in 'cat' }} {{ 3 in xs }} {{ 'a' in d }} {{ 'z' not in d }} {{ 9 not in xs }}"),
 ("tests", "{{ n is defined }} {{ q is defined }} {{ none is none }} {{ s is string }} {{ d is mapping }} {{ xs is iterable }} {{ xs is sequence }} {{ n is number }} {{ t is true }} {{ t is false }} {{ n is odd }} {{ n is even }} {{ q is not defined }} {{ n is divisibleby 7 }}"),
 ("ternary", "{{ 'y' if t else 'n' }}{{ 'y' if none else 'n' }}"),
 ("slices", "{{ xs[1:] }}|{{ xs[:-1] }}|{{ xs[::-1] }}|{{ xs[::2] }}|{{ 'hello'[1:3] }}|{{ 'hello'[::-1] }}|{{ 'héllo'[1:2] }}|{{ xs[-1] }}"),
 ("attr item", "{{ messages[0].role }} {{ messages[1]['content'] }} {{ messages[2].tool_calls[0].function.name }} {{ d.a }}"),
 ("literals", "{% set l = [1, 'a', [2]] %}{{ l | length }}{% set dd = {'k': 'v', 'n': 1} %}{{ dd.k }}{{ dd['n'] }}"),
 ("and or", "{{ 0 or 'x' }} {{ 1 and 'y' }} {{ '' or none }} {{ not t }}"),
 ("str filters", "{{ s | trim }}|{{ s | upper }}|{{ s | lower }}|{{ 'hello world' | title }}|{{ 'hELLO' | capitalize }}|{{ s | replace('l', 'L') }}|{{ s | length }}"),
 ("join", "{{ xs | join(', ') }}|{{ ['a','b'] | join }}"),
 ("tojson", "{{ messages[2].tool_calls[0].function.arguments | tojson }}|{{ d | tojson(indent=2) }}|{{ xs | tojson(separators=(',', ':')) }}|{{ 'a\"b\\n' | tojson }}|{{ d | tojson(sort_keys=true) }}|{{ [] | tojson(indent=4) }}|{{ 1.5 | tojson }}"),
 ("conversions", "{{ n | string }}{{ '42' | int + 1 }}{{ '2.5' | float }}{{ 'x' | int }}{{ 3 | float }}"),
 ("list first last", "{{ 'ab' | list | length }}{{ xs | first }}{{ xs | last }}{{ 'abc' | first }}"),
 ("default", "{{ q | default('dflt') }}{{ n | default(0) }}{{ '' | default('e', true) }}"),
 ("items dictsort", "{% for k, v in d | items %}{{ k }}={{ v }};{% endfor %}{% for k, v in d | dictsort %}{{ k }}={{ v }};{% endfor %}{% for k, v in d.items() %}{{ k }}{% endfor %}"),
 ("selectattr", "{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | join }}{{ messages | rejectattr('role', 'equalto', 'user') | list | length }}{{ messages | selectattr('tool_calls', 'defined') | list | length }}"),
 ("select reject", "{{ xs | select('odd') | join }}{{ xs | reject('odd') | join }}{{ [0, 1, '', 'a'] | select | list | length }}"),
 ("unique map", "{{ xs | unique | join }}{{ ['a', 'b'] | map('upper') | join }}"),
 ("indent", "{{ 'a\\nb\\n\\nc' | indent(2) }}|{{ 'a\\nb' | indent(4, true) }}"),
 ("escape safe", "{{ '<a href=\"x\">&' | escape }}{{ '<b>' | safe }}"),
 ("methods", "{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ 'xxhixx'.strip('x') }}|{{ '\\n\\nA\\n'.lstrip('\\n') }}|{{ 'a,b,,c'.split(',') | length }}|{{ ' a  b '.split() | join('-') }}|{{ 'a b c'.split(' ', 1) | last }}|{{ s.startswith('  H') }}|{{ s.endswith(('x', '  ')) }}|{{ 'ab'.upper() }}{{ 'AB'.lower() }}|{{ 'aaa'.replace('a', 'b', 2) }}|{{ '{} and {}'.format(1, 'x') }}"),
 ("dict methods", "{{ d.get('a') }}{{ d.get('z', 'no') }}{{ d.keys() | join }}{{ d.values() | join }}"),
 ("strftime", "{{ strftime_now('%d %b %Y') }} {{ strftime_now('%Y-%m-%d %H:%M') }}"),
 ("messages loop", "{% for m in messages %}<{{ m.role }}>{{ m.content | trim }}{% if 'tool_calls' in m %}{% for c in m.tool_calls %}[{{ c.function.name }}({{ c.function.arguments | tojson }})]{% endfor %}{% endif %}\n{% endfor %}"),
 ("loop in macro", "{% macro r(ms) %}{% for m in ms %}{{ loop.index }}{{ m.role[0] }}{% endfor %}{% endmacro %}{{ r(messages) }}"),
 ("string compare", "{{ 'a' < 'b' }}{{ 2 >= 2 }}{{ 1 == 1.0 }}{{ 'a' != 'a' }}"),
 ("whitespace mixed", "{%- for m in messages %}\n  {%- if m.role == 'user' %}\n    {{- m.content }}\n  {%- endif %}\n{%- endfor %}\n"),
 ("neg literal", "{{ -1 }} {{ 3 - -2 }} {{ xs[-2] }}"),
 ("float print", "{{ 0.1 + 0.2 }} {{ 1e0 if false else 2.0 }} {{ 10 / 4 }}"),
]
out = []
for name, src in cases:
    r = env.from_string(src).render(**V)
    out.append((name, src, r))
def c(s):
    return json.dumps(s, ensure_ascii=False)
with open(__file__.replace(".py", ".h"), "w") as f:
    f.write("// Generated from Python's jinja2 3.1 (trim_blocks, lstrip_blocks, as transformers).\n")
    f.write("static const char *JVARS = %s;\n" % c(json.dumps(V, ensure_ascii=False)))
    f.write("static const struct { const char *name, *src, *want; } JCASES[] = {\n")
    for n, s, r in out:
        f.write("    {%s, %s, %s},\n" % (c(n), c(s), c(r)))
    f.write("};\n")
print(len(out))
for n,s,r in out: print(n, repr(r)[:150])
