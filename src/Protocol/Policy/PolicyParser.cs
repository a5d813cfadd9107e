namespace SecureChannels.Protocol.Policy;

/// <summary>
/// Recursive descent over the grammar in <see cref="AccessPolicy.Parse"/>. Recursion happens only at
/// <c>(</c>, and both <c>(</c> and <c>!</c> count against <see cref="AccessPolicy.MaxNestingDepth"/>, so hostile
/// nesting ends in <see cref="PolicyErrorCode.TooDeep"/> long before the stack is in danger.
/// </summary>
internal sealed class PolicyParser
{
    private readonly PolicyLexer _lexer;
    private Token _current;
    private int _depth;

    private PolicyParser(string text)
    {
        _lexer = new PolicyLexer(text);
        _current = _lexer.Next();
    }

    /// <summary>Parses and type-checks a whole policy; throws <see cref="PolicySyntaxException"/> on the first error.</summary>
    public static PolicyNode Parse(string text)
    {
        var parser = new PolicyParser(text);
        var root = parser.ParseOr();
        if (parser._current.Kind != TokenKind.End)
        {
            throw parser.Unexpected("'&&', '||' or the end of the policy");
        }

        return root;
    }

    private void Advance() => _current = _lexer.Next();

    private Token Expect(TokenKind kind, string expected)
    {
        if (_current.Kind != kind)
        {
            throw Unexpected(expected);
        }

        var token = _current;
        Advance();
        return token;
    }

    private PolicySyntaxException Unexpected(string expected) => _current.Kind == TokenKind.End
        ? _lexer.Error(_current.Position, PolicyErrorCode.UnexpectedEnd, $"Expected {expected} but the policy ended")
        : _lexer.Error(_current.Position, PolicyErrorCode.UnexpectedToken, $"Expected {expected} but found {_lexer.Describe(_current)}");

    private void EnterNesting()
    {
        if (++_depth > AccessPolicy.MaxNestingDepth)
        {
            throw _lexer.Error(_current.Position, PolicyErrorCode.TooDeep, $"Parentheses and '!' are nested deeper than {AccessPolicy.MaxNestingDepth}");
        }
    }

    // or = and { "||" and }
    private PolicyNode ParseOr()
    {
        var first = ParseAnd();
        if (_current.Kind != TokenKind.Or)
        {
            return first;
        }

        var children = new List<PolicyNode>();
        AddFlattened(children, first);
        while (_current.Kind == TokenKind.Or)
        {
            Advance();
            AddFlattened(children, ParseAnd());
        }

        return new OrNode([.. children]);

        // (a || b) || c is a || b || c: Kleene || is associative, and a flat node is one loop, not a chain.
        static void AddFlattened(List<PolicyNode> children, PolicyNode node)
        {
            if (node is OrNode or)
            {
                children.AddRange(or.Children);
            }
            else
            {
                children.Add(node);
            }
        }
    }

    // and = unary { "&&" unary }
    private PolicyNode ParseAnd()
    {
        var first = ParseUnary();
        if (_current.Kind != TokenKind.And)
        {
            return first;
        }

        var children = new List<PolicyNode>();
        AddFlattened(children, first);
        while (_current.Kind == TokenKind.And)
        {
            Advance();
            AddFlattened(children, ParseUnary());
        }

        return new AndNode([.. children]);

        static void AddFlattened(List<PolicyNode> children, PolicyNode node)
        {
            if (node is AndNode and)
            {
                children.AddRange(and.Children);
            }
            else
            {
                children.Add(node);
            }
        }
    }

    // unary = { "!" } primary. A loop, not recursion; !!x is x in three-valued logic, so only parity is kept.
    private PolicyNode ParseUnary()
    {
        var negations = 0;
        while (_current.Kind == TokenKind.Not)
        {
            EnterNesting();
            negations++;
            Advance();
        }

        var operand = ParsePrimary();
        _depth -= negations;
        if (negations % 2 == 0)
        {
            return operand;
        }

        return operand is ConstantNode constant
            ? new ConstantNode(PolicySemantics.Not(constant.Value))
            : new NotNode(operand);
    }

    // primary = "(" or ")" | "has" "(" name ")" | condition
    private PolicyNode ParsePrimary()
    {
        switch (_current.Kind)
        {
            case TokenKind.OpenParen:
                EnterNesting();
                Advance();
                var inner = ParseOr();
                Expect(TokenKind.CloseParen, "')'");
                _depth--;
                return inner;
            case TokenKind.Has:
                Advance();
                Expect(TokenKind.OpenParen, "'(' after 'has'");
                var name = Expect(TokenKind.Name, "a name");
                Expect(TokenKind.CloseParen, "')'");
                return new HasNode(name.Value!);
            default:
                return ParseCondition();
        }
    }

    // condition = operand [ compare-op operand | "in" ( list | name ) ]
    private PolicyNode ParseCondition()
    {
        var leftToken = _current;
        var left = ParseOperand();
        var op = _current.Kind switch
        {
            TokenKind.Equal => ComparisonOperator.Equal,
            TokenKind.NotEqual => ComparisonOperator.NotEqual,
            TokenKind.Less => ComparisonOperator.Less,
            TokenKind.LessOrEqual => ComparisonOperator.LessOrEqual,
            TokenKind.Greater => ComparisonOperator.Greater,
            TokenKind.GreaterOrEqual => ComparisonOperator.GreaterOrEqual,
            _ => (ComparisonOperator?)null,
        };

        if (op is { } comparison)
        {
            Advance();
            var rightToken = _current;
            var right = ParseOperand();
            return BuildComparison(left, leftToken, comparison, right, rightToken);
        }

        if (_current.Kind == TokenKind.In)
        {
            Advance();
            return ParseIn(left, leftToken);
        }

        // A bare operand is a condition only if it can be boolean.
        if (!left.IsLiteral)
        {
            return new BooleanNameNode(left.Name!);
        }

        if (left.Literal.Kind == PolicyValueKind.Boolean)
        {
            return new ConstantNode(PolicySemantics.Of(left.Literal.NumberUnchecked != 0));
        }

        throw _lexer.Error(leftToken.Position, PolicyErrorCode.TypeMismatch, $"{_lexer.Describe(leftToken)} is not a condition; compare it with something");
    }

    // operand = name | string | integer | "true" | "false"
    private Operand ParseOperand()
    {
        var token = _current;
        var operand = token.Kind switch
        {
            TokenKind.Name => Operand.ForName(token.Value!),
            TokenKind.String => Operand.ForLiteral(PolicyValue.FromString(token.Value!)),
            TokenKind.Integer => Operand.ForLiteral(PolicyValue.FromInteger(token.Integer)),
            TokenKind.True => Operand.ForLiteral(PolicyValue.FromBoolean(true)),
            TokenKind.False => Operand.ForLiteral(PolicyValue.FromBoolean(false)),
            _ => throw Unexpected("a name, a literal, '(', '!' or 'has'"),
        };
        Advance();
        return operand;
    }

    private PolicyNode BuildComparison(Operand left, Token leftToken, ComparisonOperator op, Operand right, Token rightToken)
    {
        var ordering = op is not (ComparisonOperator.Equal or ComparisonOperator.NotEqual);
        if (ordering)
        {
            // An ordering is only ever true between integers; a literal of another type makes it dead code.
            if (left.IsLiteral && left.Literal.Kind != PolicyValueKind.Integer)
            {
                throw TypeMismatch(leftToken, "ordering operators compare integers only");
            }

            if (right.IsLiteral && right.Literal.Kind != PolicyValueKind.Integer)
            {
                throw TypeMismatch(rightToken, "ordering operators compare integers only");
            }
        }
        else if (left.IsLiteral && right.IsLiteral && left.Literal.Kind != right.Literal.Kind)
        {
            throw TypeMismatch(rightToken, $"it cannot be compared with {_lexer.Describe(leftToken)}");
        }

        if (left.IsLiteral && right.IsLiteral)
        {
            return new ConstantNode(PolicySemantics.Compare(op, left.Literal, right.Literal));
        }

        return new CompareNode(left, op, right);
    }

    private PolicyNode ParseIn(Operand left, Token leftToken)
    {
        if (_current.Kind == TokenKind.OpenBracket)
        {
            var (strings, integers) = ParseList();
            if (left.IsLiteral)
            {
                var kind = left.Literal.Kind;
                if (kind is not (PolicyValueKind.String or PolicyValueKind.Integer)
                    || (strings is not null && kind != PolicyValueKind.String)
                    || (integers is not null && kind != PolicyValueKind.Integer))
                {
                    throw TypeMismatch(leftToken, "it can never be an element of this list");
                }

                return new ConstantNode(PolicySemantics.InList(left.Literal, strings, integers));
            }

            return new InListNode(left.Name!, strings, integers);
        }

        if (_current.Kind == TokenKind.Name)
        {
            var container = _current.Value!;
            Advance();
            if (left.IsLiteral && left.Literal.Kind != PolicyValueKind.String)
            {
                throw TypeMismatch(leftToken, "sets hold strings only");
            }

            return new InNameNode(left, container);
        }

        if (_current.Kind is TokenKind.String or TokenKind.Integer or TokenKind.True or TokenKind.False)
        {
            throw TypeMismatch(_current, "the right side of 'in' is a list or a name");
        }

        throw Unexpected("a list or a name after 'in'");
    }

    // list = "[" [ item { "," item } ] "]", items all strings or all integers.
    private (string[]? Strings, long[]? Integers) ParseList()
    {
        Advance();
        if (_current.Kind == TokenKind.CloseBracket)
        {
            Advance();
            return (null, null);
        }

        var strings = new List<string>();
        var integers = new List<long>();
        var first = _current.Kind;
        while (true)
        {
            if (strings.Count + integers.Count == AccessPolicy.MaxListLength)
            {
                throw _lexer.Error(_current.Position, PolicyErrorCode.TooLong, $"A list has more than {AccessPolicy.MaxListLength} items");
            }

            switch (_current.Kind)
            {
                case TokenKind.String or TokenKind.Integer when _current.Kind != first:
                    throw TypeMismatch(_current, "a list holds only strings or only integers");
                case TokenKind.String:
                    strings.Add(_current.Value!);
                    break;
                case TokenKind.Integer:
                    integers.Add(_current.Integer);
                    break;
                case TokenKind.True or TokenKind.False:
                    throw TypeMismatch(_current, "a list holds strings or integers");
                default:
                    throw Unexpected("a string or integer list item");
            }

            Advance();
            if (_current.Kind == TokenKind.CloseBracket)
            {
                Advance();
                break;
            }

            Expect(TokenKind.Comma, "',' or ']'");
        }

        // Sorted and distinct, so evaluation is a binary search.
        if (first == TokenKind.String)
        {
            var sorted = strings.Distinct(StringComparer.Ordinal).ToArray();
            Array.Sort(sorted, StringComparer.Ordinal);
            return (sorted, null);
        }

        var numbers = integers.Distinct().ToArray();
        Array.Sort(numbers);
        return (null, numbers);
    }

    private PolicySyntaxException TypeMismatch(Token token, string why) =>
        _lexer.Error(token.Position, PolicyErrorCode.TypeMismatch, $"Type mismatch at {_lexer.Describe(token)}: {why}");
}
