#!/usr/bin/env python3
"""Writes the Claude Code fixture goldens: the request bodies as sent (compact JSON, as Node's JSON.stringify
writes them) and the Gemini bodies Warden must produce, computed here independently of the C encoder from
the rules in providers/gemini_request.c's header comments and the Gemini API reference.

    python3 tests/unit/golden/make_fixture_goldens.py ../shared/fixtures/claude-code
"""
import json, os, sys

src = sys.argv[1] if len(sys.argv) > 1 else '../shared/fixtures/claude-code'
here = os.path.dirname(os.path.abspath(__file__))

def text_of(content):
    return [content] if isinstance(content, str) else [b['text'] for b in content if b['type'] == 'text']

def translate(body, model):
    contents = []
    def add(role, part):
        if contents and contents[-1]['role'] == role:
            contents[-1]['parts'].append(part)
        else:
            contents.append({'role': role, 'parts': [part]})
    names = {}
    for m in body['messages']:
        if m['role'] == 'system':
            texts = [t for t in text_of(m['content']) if t]
            if texts:
                add('user', {'text': '<system-reminder>\n' + '\n'.join(texts) + '\n</system-reminder>'})
            continue
        content = m['content'] if isinstance(m['content'], list) else [{'type': 'text', 'text': m['content']}]
        if m['role'] == 'user':
            for b in content:
                if b['type'] == 'tool_result':
                    out = '\n'.join(text_of(b.get('content', [])))
                    add('user', {'functionResponse': {'name': names[b['tool_use_id']],
                                                      'response': {'error' if b.get('is_error') else 'output': out}}})
            for b in content:
                if b['type'] == 'text' and b['text']:
                    add('user', {'text': b['text']})
        else:
            first = True
            for b in content:
                if b['type'] == 'text' and b['text']:
                    add('model', {'text': b['text']})
                elif b['type'] == 'tool_use':
                    names[b['id']] = b['name']
                    part = {'functionCall': {'name': b['name'], 'args': b['input']}}
                    if model.startswith('gemini-3') and first:
                        part['thoughtSignature'] = 'skip_thought_signature_validator'
                    first = False
                    add('model', part)
    out = {'contents': contents}
    system = [b['text'] for b in body['system']
              if b['text'] and not b['text'].startswith('x-anthropic-billing-header:')]
    if system:
        out['systemInstruction'] = {'parts': [{'text': t} for t in system]}
    out['tools'] = [{'functionDeclarations': [
        dict({'name': t['name']}, **({'description': t['description']} if t.get('description') else {}),
             parametersJsonSchema=t['input_schema']) for t in body['tools']]}]
    gc = {'maxOutputTokens': min(body['max_tokens'], 65536)}
    # thinking adaptive + effort medium; display omitted -> no includeThoughts
    assert body['thinking'] == {'type': 'adaptive', 'display': 'omitted'}
    assert body['output_config'] == {'effort': 'medium'}
    if model.startswith('gemini-3'):
        gc['thinkingConfig'] = {'thinkingLevel': 'medium' if 'flash' in model else 'high'}
    elif model.startswith('gemini-2.5-pro'):
        gc['thinkingConfig'] = {'thinkingBudget': 8192}
    out['generationConfig'] = gc
    return out

for name in ('first-turn', 'tool-result-turn'):
    body = json.load(open(os.path.join(src, name + '.json')))['request']['body']
    with open(os.path.join(here, f'claude-code-{name}.request.json'), 'w') as f:
        f.write(json.dumps(body, ensure_ascii=False, separators=(',', ':')))
    for model in ('gemini-2.5-pro', 'gemini-3-pro-preview'):
        with open(os.path.join(here, f'claude-code-{name}.{model}.json'), 'w') as f:
            f.write(json.dumps(translate(body, model), ensure_ascii=False, indent=1) + '\n')
