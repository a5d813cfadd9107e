namespace SecureChannels.Protocol.Policy;

/// <summary>
/// A node of a compiled policy. The tree is immutable after parsing, so one tree serves concurrent evaluations;
/// its depth is bounded by <see cref="AccessPolicy.MaxNestingDepth"/>, so the recursive evaluation cannot
/// exhaust the stack; and no node allocates while evaluating.
/// </summary>
internal abstract class PolicyNode
{
    public abstract Truth Evaluate(IPolicyInput input);

    /// <summary>Resolves a name; a present-but-default value means a broken input, which must deny as a whole.</summary>
    protected static bool TryResolve(IPolicyInput input, string name, out PolicyValue value)
    {
        if (!input.TryGetValue(name, out value))
        {
            return false;
        }

        if (value.Kind == PolicyValueKind.None)
        {
            // Caught by AccessPolicy.Evaluate, which denies. Not Unknown: under has() and !has() a broken
            // input could otherwise steer the result either way.
            throw new InvalidOperationException($"The policy input reported '{name}' as present with default(PolicyValue).");
        }

        return true;
    }
}

/// <summary>A comparison operand: a name to look up, or a literal.</summary>
internal readonly struct Operand
{
    private Operand(string? name, PolicyValue literal)
    {
        Name = name;
        Literal = literal;
    }

    public string? Name { get; }

    public PolicyValue Literal { get; }

    public bool IsLiteral => Name is null;

    public static Operand ForName(string name) => new(name, default);

    public static Operand ForLiteral(PolicyValue literal) => new(null, literal);
}

internal sealed class ConstantNode : PolicyNode
{
    public ConstantNode(Truth value) => Value = value;

    public Truth Value { get; }

    public override Truth Evaluate(IPolicyInput input) => Value;
}

/// <summary>Kleene disjunction: True if any child is True, else Unknown if any is Unknown, else False.</summary>
internal sealed class OrNode : PolicyNode
{
    private readonly PolicyNode[] _children;

    public OrNode(PolicyNode[] children) => _children = children;

    public PolicyNode[] Children => _children;

    public override Truth Evaluate(IPolicyInput input)
    {
        var result = Truth.False;
        foreach (var child in _children)
        {
            var value = child.Evaluate(input);
            if (value == Truth.True)
            {
                return Truth.True;
            }

            if (value == Truth.Unknown)
            {
                result = Truth.Unknown;
            }
        }

        return result;
    }
}

/// <summary>Kleene conjunction: False if any child is False, else Unknown if any is Unknown, else True.</summary>
internal sealed class AndNode : PolicyNode
{
    private readonly PolicyNode[] _children;

    public AndNode(PolicyNode[] children) => _children = children;

    public PolicyNode[] Children => _children;

    public override Truth Evaluate(IPolicyInput input)
    {
        var result = Truth.True;
        foreach (var child in _children)
        {
            var value = child.Evaluate(input);
            if (value == Truth.False)
            {
                return Truth.False;
            }

            if (value == Truth.Unknown)
            {
                result = Truth.Unknown;
            }
        }

        return result;
    }
}

/// <summary>Negation that keeps Unknown Unknown, so <c>!</c> can never turn a missing name into an allow.</summary>
internal sealed class NotNode : PolicyNode
{
    private readonly PolicyNode _operand;

    public NotNode(PolicyNode operand) => _operand = operand;

    public override Truth Evaluate(IPolicyInput input) => PolicySemantics.Not(_operand.Evaluate(input));
}

/// <summary><c>has(name)</c>: definitely True or False, never Unknown; presence is the one thing always known.</summary>
internal sealed class HasNode : PolicyNode
{
    private readonly string _name;

    public HasNode(string name) => _name = name;

    public override Truth Evaluate(IPolicyInput input) => PolicySemantics.Of(TryResolve(input, _name, out _));
}

/// <summary>A bare name used as a condition: its boolean value; Unknown when missing or not a boolean.</summary>
internal sealed class BooleanNameNode : PolicyNode
{
    private readonly string _name;

    public BooleanNameNode(string name) => _name = name;

    public override Truth Evaluate(IPolicyInput input)
    {
        if (!TryResolve(input, _name, out var value) || value.Kind != PolicyValueKind.Boolean)
        {
            return Truth.Unknown;
        }

        return PolicySemantics.Of(value.NumberUnchecked != 0);
    }
}

/// <summary>One of the six comparisons, at least one side a name (literal-only comparisons are folded).</summary>
internal sealed class CompareNode : PolicyNode
{
    private readonly Operand _left;
    private readonly ComparisonOperator _op;
    private readonly Operand _right;

    public CompareNode(Operand left, ComparisonOperator op, Operand right)
    {
        _left = left;
        _op = op;
        _right = right;
    }

    public override Truth Evaluate(IPolicyInput input)
    {
        PolicyValue left;
        if (_left.IsLiteral)
        {
            left = _left.Literal;
        }
        else if (!TryResolve(input, _left.Name!, out left))
        {
            return Truth.Unknown;
        }

        PolicyValue right;
        if (_right.IsLiteral)
        {
            right = _right.Literal;
        }
        else if (!TryResolve(input, _right.Name!, out right))
        {
            return Truth.Unknown;
        }

        return PolicySemantics.Compare(_op, left, right);
    }
}

/// <summary><c>name in [list]</c>; the list is sorted at parse time so membership is a binary search.</summary>
internal sealed class InListNode : PolicyNode
{
    private readonly string _name;
    private readonly string[]? _strings;
    private readonly long[]? _integers;

    public InListNode(string name, string[]? strings, long[]? integers)
    {
        _name = name;
        _strings = strings;
        _integers = integers;
    }

    public override Truth Evaluate(IPolicyInput input) =>
        TryResolve(input, _name, out var value) ? PolicySemantics.InList(value, _strings, _integers) : Truth.Unknown;
}

/// <summary><c>left in name</c>, where the right-hand name holds a set (or a single string).</summary>
internal sealed class InNameNode : PolicyNode
{
    private readonly Operand _left;
    private readonly string _container;

    public InNameNode(Operand left, string container)
    {
        _left = left;
        _container = container;
    }

    public override Truth Evaluate(IPolicyInput input)
    {
        PolicyValue value;
        if (_left.IsLiteral)
        {
            value = _left.Literal;
        }
        else if (!TryResolve(input, _left.Name!, out value))
        {
            return Truth.Unknown;
        }

        return TryResolve(input, _container, out var container) ? PolicySemantics.InValue(value, container) : Truth.Unknown;
    }
}
