namespace SecureChannels.Protocol.Policy;

/// <summary>The three truth values of evaluation. <see cref="Unknown"/> comes from a missing name or a type mismatch.</summary>
internal enum Truth : byte
{
    False = 0,
    True = 1,
    Unknown = 2,
}

/// <summary>
/// What each comparison means on two resolved values. Shared by the evaluator and by the parser's constant
/// folding, so a literal-only comparison means exactly what it would at run time. Nothing here allocates.
/// </summary>
internal static class PolicySemantics
{
    public static Truth Of(bool value) => value ? Truth.True : Truth.False;

    public static Truth Not(Truth value) => value switch
    {
        Truth.True => Truth.False,
        Truth.False => Truth.True,
        _ => Truth.Unknown,
    };

    /// <summary>
    /// <c>==</c>: same kind and same content, except that a string equals a set holding exactly that one
    /// string, because a single-valued attribute may arrive as a one-element set. Other kind pairs: Unknown.
    /// </summary>
    public static Truth Equal(in PolicyValue left, in PolicyValue right)
    {
        var leftKind = left.Kind;
        var rightKind = right.Kind;
        if (leftKind == rightKind)
        {
            return leftKind switch
            {
                PolicyValueKind.String => Of(string.Equals(left.StringUnchecked, right.StringUnchecked, StringComparison.Ordinal)),
                PolicyValueKind.Integer or PolicyValueKind.Boolean => Of(left.NumberUnchecked == right.NumberUnchecked),
                PolicyValueKind.StringSet => Of(left.SetUnchecked.AsSpan().SequenceEqual(right.SetUnchecked)),
                _ => Truth.Unknown,
            };
        }

        if (leftKind == PolicyValueKind.String && rightKind == PolicyValueKind.StringSet)
        {
            return Of(IsSingleton(right.SetUnchecked, left.StringUnchecked));
        }

        if (leftKind == PolicyValueKind.StringSet && rightKind == PolicyValueKind.String)
        {
            return Of(IsSingleton(left.SetUnchecked, right.StringUnchecked));
        }

        return Truth.Unknown;
    }

    /// <summary>An ordering operator; integers only, anything else is Unknown.</summary>
    public static Truth Order(ComparisonOperator op, in PolicyValue left, in PolicyValue right)
    {
        if (left.Kind != PolicyValueKind.Integer || right.Kind != PolicyValueKind.Integer)
        {
            return Truth.Unknown;
        }

        var a = left.NumberUnchecked;
        var b = right.NumberUnchecked;
        return Of(op switch
        {
            ComparisonOperator.Less => a < b,
            ComparisonOperator.LessOrEqual => a <= b,
            ComparisonOperator.Greater => a > b,
            _ => a >= b,
        });
    }

    /// <summary>Any of the six comparison operators.</summary>
    public static Truth Compare(ComparisonOperator op, in PolicyValue left, in PolicyValue right) => op switch
    {
        ComparisonOperator.Equal => Equal(left, right),
        ComparisonOperator.NotEqual => Not(Equal(left, right)),
        _ => Order(op, left, right),
    };

    /// <summary>
    /// <c>value in [list]</c>. Exactly one of <paramref name="strings"/> and <paramref name="integers"/> is set
    /// (sorted, distinct), or neither for the empty list. A string or integer must be an element; a set must be
    /// non-empty with every element in the list, so an empty set of grants never passes an allow-list.
    /// </summary>
    public static Truth InList(in PolicyValue value, string[]? strings, long[]? integers)
    {
        switch (value.Kind)
        {
            case PolicyValueKind.String:
                return integers is not null ? Truth.Unknown : Of(strings is not null && SortedContains(strings, value.StringUnchecked));
            case PolicyValueKind.StringSet:
                return integers is not null ? Truth.Unknown : Of(strings is not null && IsNonEmptySubset(value.SetUnchecked, strings));
            case PolicyValueKind.Integer:
                return strings is not null ? Truth.Unknown : Of(integers is not null && Array.BinarySearch(integers, value.NumberUnchecked) >= 0);
            default:
                return Truth.Unknown;
        }
    }

    /// <summary>
    /// <c>value in name</c>: the container is a set, or a string taken as the set of that one string. The value
    /// is a string (must be an element) or a set (non-empty, every element in the container). Otherwise Unknown.
    /// </summary>
    public static Truth InValue(in PolicyValue value, in PolicyValue container)
    {
        if (container.Kind == PolicyValueKind.String)
        {
            var only = container.StringUnchecked;
            return value.Kind switch
            {
                PolicyValueKind.String => Of(string.Equals(value.StringUnchecked, only, StringComparison.Ordinal)),
                PolicyValueKind.StringSet => Of(IsSingleton(value.SetUnchecked, only)),
                _ => Truth.Unknown,
            };
        }

        if (container.Kind == PolicyValueKind.StringSet)
        {
            var set = container.SetUnchecked;
            return value.Kind switch
            {
                PolicyValueKind.String => Of(SortedContains(set, value.StringUnchecked)),
                PolicyValueKind.StringSet => Of(IsNonEmptySubset(value.SetUnchecked, set)),
                _ => Truth.Unknown,
            };
        }

        return Truth.Unknown;
    }

    /// <summary>Binary search of an ordinally sorted array.</summary>
    public static bool SortedContains(string[] sorted, string value)
    {
        var low = 0;
        var high = sorted.Length - 1;
        while (low <= high)
        {
            var middle = low + ((high - low) >> 1);
            var order = string.CompareOrdinal(sorted[middle], value);
            if (order == 0)
            {
                return true;
            }

            if (order < 0)
            {
                low = middle + 1;
            }
            else
            {
                high = middle - 1;
            }
        }

        return false;
    }

    private static bool IsSingleton(string[] set, string value) =>
        set.Length == 1 && string.Equals(set[0], value, StringComparison.Ordinal);

    // Both sorted and distinct, so one merge walk decides it.
    private static bool IsNonEmptySubset(string[] subset, string[] superset)
    {
        if (subset.Length == 0 || subset.Length > superset.Length)
        {
            return false;
        }

        var j = 0;
        foreach (var element in subset)
        {
            while (true)
            {
                if (j == superset.Length)
                {
                    return false;
                }

                var order = string.CompareOrdinal(superset[j], element);
                j++;
                if (order == 0)
                {
                    break;
                }

                if (order > 0)
                {
                    return false;
                }
            }
        }

        return true;
    }
}

/// <summary>The six comparison operators.</summary>
internal enum ComparisonOperator : byte
{
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}
