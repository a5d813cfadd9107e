using SecureChannels.Protocol.Policy;

namespace SecureChannels.Protocol.Tests.Policy;

/// <summary>What policies decide: the operators, precedence, set semantics and the deny-safety of missing names.</summary>
public sealed class AccessPolicyEvaluationTests
{
    private const string Example = "subject.role == \"billing\" && subject.env in [\"staging\", \"prod\"]";

    [Theory]
    [InlineData("staging")]
    [InlineData("prod")]
    public void ExamplePolicyAllowsBillingInListedEnvironments(string environment)
    {
        var input = new PolicyInput().Set("subject.role", "billing").Set("subject.env", environment);
        Assert.Equal(PolicyDecision.Allow, AccessPolicy.Parse(Example).Evaluate(input));
    }

    [Theory]
    [InlineData("billing", "dev")]
    [InlineData("support", "prod")]
    [InlineData("Billing", "prod")]
    [InlineData("billing", "PROD")]
    public void ExamplePolicyDeniesOtherRolesAndEnvironments(string role, string environment)
    {
        var input = new PolicyInput().Set("subject.role", role).Set("subject.env", environment);
        Assert.Equal(PolicyDecision.Deny, AccessPolicy.Parse(Example).Evaluate(input));
    }

    [Fact]
    public void ExamplePolicyDeniesWhenAnAttributeIsMissing()
    {
        var policy = AccessPolicy.Parse(Example);
        Assert.Equal(PolicyDecision.Deny, policy.Evaluate(new PolicyInput().Set("subject.role", "billing")));
        Assert.Equal(PolicyDecision.Deny, policy.Evaluate(new PolicyInput().Set("subject.env", "prod")));
        Assert.Equal(PolicyDecision.Deny, policy.Evaluate(new PolicyInput()));
    }

    [Fact]
    public void ExamplePolicyAcceptsSingleElementSetsForRoleAndEnvironment()
    {
        var input = new PolicyInput().Set("subject.role", ["billing"]).Set("subject.env", ["prod", "staging"]);
        Assert.Equal(PolicyDecision.Allow, AccessPolicy.Parse(Example).Evaluate(input));
    }

    [Theory]
    [InlineData("n == 5", true)]
    [InlineData("n == 6", false)]
    [InlineData("n != 6", true)]
    [InlineData("n != 5", false)]
    [InlineData("n < 6", true)]
    [InlineData("n < 5", false)]
    [InlineData("n <= 5", true)]
    [InlineData("n <= 4", false)]
    [InlineData("n > 4", true)]
    [InlineData("n > 5", false)]
    [InlineData("n >= 5", true)]
    [InlineData("n >= 6", false)]
    [InlineData("4 < n", true)]
    [InlineData("5 < n", false)]
    [InlineData("n in [1, 5, 9]", true)]
    [InlineData("n in [1, 9]", false)]
    [InlineData("n == m", false)]
    [InlineData("n < m", true)]
    [InlineData("s == \"abc\"", true)]
    [InlineData("\"abc\" == s", true)]
    [InlineData("s == \"ABC\"", false)]
    [InlineData("s != \"abc\"", false)]
    [InlineData("s != \"abd\"", true)]
    [InlineData("s in [\"x\", \"abc\"]", true)]
    [InlineData("s in [\"x\", \"y\"]", false)]
    [InlineData("s in []", false)]
    [InlineData("\"abc\" in s", true)]
    [InlineData("\"ab\" in s", false)]
    [InlineData("b == true", true)]
    [InlineData("b != true", false)]
    [InlineData("b", true)]
    [InlineData("!b", false)]
    [InlineData("f", false)]
    [InlineData("!f", true)]
    [InlineData("has(n)", true)]
    [InlineData("has(missing)", false)]
    [InlineData("!has(missing)", true)]
    [InlineData("true", true)]
    [InlineData("false", false)]
    [InlineData("!false", true)]
    [InlineData("!!true", true)]
    [InlineData("!!!true", false)]
    [InlineData("b && f", false)]
    [InlineData("b && b", true)]
    [InlineData("b || f", true)]
    [InlineData("f || f", false)]
    [InlineData("(((b)))", true)]
    [InlineData("1 < 2", true)]
    [InlineData("2 <= 1", false)]
    [InlineData("\"a\" in [\"a\", \"b\"]", true)]
    [InlineData("3 in [1, 2]", false)]
    [InlineData("\"a\" != \"b\"", true)]
    public void EachOperatorDecidesAsDocumented(string text, bool allowed)
    {
        var input = new PolicyInput()
            .Set("n", 5)
            .Set("m", 9)
            .Set("s", "abc")
            .Set("b", true)
            .Set("f", false);
        Assert.Equal(allowed ? PolicyDecision.Allow : PolicyDecision.Deny, AccessPolicy.Parse(text).Evaluate(input));
    }

    [Theory]
    [InlineData("true || false && false", true)]
    [InlineData("(true || false) && false", false)]
    [InlineData("false && false || true", true)]
    [InlineData("false && (false || true)", false)]
    [InlineData("a || b && c", true)]
    [InlineData("(a || b) && c", false)]
    [InlineData("!a || a", true)]
    [InlineData("!(a || a)", false)]
    [InlineData("!n == 1", true)]
    [InlineData("!(n == 1)", true)]
    public void AndBindsTighterThanOrAndNotBindsTightest(string text, bool allowed)
    {
        var input = new PolicyInput().Set("a", true).Set("b", false).Set("c", false).Set("n", 2);
        Assert.Equal(allowed ? PolicyDecision.Allow : PolicyDecision.Deny, AccessPolicy.Parse(text).Evaluate(input));
    }

    [Theory]
    [InlineData(new[] { "admin" }, "r == \"admin\"", true)]
    [InlineData(new[] { "admin", "ops" }, "r == \"admin\"", false)]
    [InlineData(new string[0], "r == \"admin\"", false)]
    [InlineData(new[] { "admin", "ops" }, "\"admin\" in r", true)]
    [InlineData(new[] { "ops" }, "\"admin\" in r", false)]
    [InlineData(new string[0], "\"admin\" in r", false)]
    [InlineData(new[] { "a", "b" }, "r in [\"a\", \"b\", \"c\"]", true)]
    [InlineData(new[] { "a", "d" }, "r in [\"a\", \"b\", \"c\"]", false)]
    [InlineData(new string[0], "r in [\"a\", \"b\", \"c\"]", false)]
    [InlineData(new[] { "a", "a", "b" }, "r in [\"a\", \"b\"]", true)]
    [InlineData(new[] { "a", "b" }, "r in allowed", true)]
    [InlineData(new[] { "a", "z" }, "r in allowed", false)]
    [InlineData(new[] { "a", "b" }, "r == allowed", false)]
    [InlineData(new[] { "c", "b", "a" }, "r == allowed", true)]
    [InlineData(new[] { "a" }, "r == single", true)]
    [InlineData(new[] { "a" }, "r in single", true)]
    [InlineData(new[] { "a", "b" }, "r in single", false)]
    [InlineData(new[] { "a" }, "single in r", true)]
    [InlineData(new[] { "b" }, "single in r", false)]
    [InlineData(new[] { "a" }, "r in [1, 2]", false)]
    [InlineData(new[] { "a" }, "r < 3", false)]
    public void SetValuedNamesFollowSetSemantics(string[] roles, string text, bool allowed)
    {
        var input = new PolicyInput()
            .Set("r", roles)
            .Set("allowed", ["a", "b", "c"])
            .Set("single", "a");
        Assert.Equal(allowed ? PolicyDecision.Allow : PolicyDecision.Deny, AccessPolicy.Parse(text).Evaluate(input));
    }

    [Theory]
    [InlineData("missing == \"admin\"")]
    [InlineData("!(missing == \"admin\")")]
    [InlineData("missing != \"admin\"")]
    [InlineData("!(missing != \"admin\")")]
    [InlineData("!(missing < 3)")]
    [InlineData("!(missing >= 3)")]
    [InlineData("!(missing in [\"a\"])")]
    [InlineData("!(\"a\" in missing)")]
    [InlineData("!(s in missing)")]
    [InlineData("!missing")]
    [InlineData("!(missing == s)")]
    [InlineData("!(s == missing)")]
    [InlineData("!(missing == 1 && true)")]
    [InlineData("!(missing == 1 || false)")]
    [InlineData("!(missing == 1) || false")]
    [InlineData("!!!(missing == 1)")]
    [InlineData("!(missing == 1) && true")]
    [InlineData("!(!(missing == 1))")]
    public void MissingNamesDenyUnderAnyNumberOfNegations(string text)
    {
        var input = new PolicyInput().Set("s", "x");
        Assert.Equal(PolicyDecision.Deny, AccessPolicy.Parse(text).Evaluate(input));
    }

    [Theory]
    [InlineData("missing == 1 || true", true)]
    [InlineData("true || missing == 1", true)]
    [InlineData("missing == 1 && false", false)]
    [InlineData("!(missing == 1 && false)", true)]
    [InlineData("!(missing == 1 || true)", false)]
    [InlineData("!has(missing) && !has(other)", true)]
    public void UnknownCombinesWithDefiniteValuesLikeKleeneLogic(string text, bool allowed)
    {
        Assert.Equal(allowed ? PolicyDecision.Allow : PolicyDecision.Deny, AccessPolicy.Parse(text).Evaluate(new PolicyInput()));
    }

    [Theory]
    [InlineData("level < 5")]
    [InlineData("!(level < 5)")]
    [InlineData("!(level >= 5)")]
    [InlineData("level == 5")]
    [InlineData("!(level == 5)")]
    [InlineData("level != 5")]
    [InlineData("level in [1, 2]")]
    [InlineData("!(level in [1, 2])")]
    [InlineData("level")]
    [InlineData("!level")]
    [InlineData("!(n in level)")]
    [InlineData("!(level == n)")]
    public void RuntimeTypeMismatchesDenyEvenUnderNegation(string text)
    {
        var input = new PolicyInput().Set("level", "high").Set("n", 3);
        Assert.Equal(PolicyDecision.Deny, AccessPolicy.Parse(text).Evaluate(input));
    }

    [Fact]
    public void NoPolicyMeansDeny()
    {
        var input = new PolicyInput().Set("subject.role", "billing").Set("subject.env", "prod");
        Assert.Equal(PolicyDecision.Deny, AccessPolicy.EvaluateOrDeny(null, input));
        Assert.Equal(PolicyDecision.Allow, AccessPolicy.EvaluateOrDeny(AccessPolicy.Parse(Example), input));
    }

    [Fact]
    public void DecisionDefaultIsDeny()
    {
        Assert.Equal(PolicyDecision.Deny, default(PolicyDecision));
    }

    [Fact]
    public void NullInputDenies()
    {
        Assert.Equal(PolicyDecision.Deny, AccessPolicy.Parse("true").Evaluate(null!));
        Assert.Equal(PolicyDecision.Deny, AccessPolicy.EvaluateOrDeny(AccessPolicy.Parse("true"), null!));
    }

    [Theory]
    [InlineData("a == 1")]
    [InlineData("!(a == 1)")]
    [InlineData("true || a == 1")]
    [InlineData("!has(a)")]
    public void InputThatThrowsDeniesWithoutThrowing(string text)
    {
        var decision = AccessPolicy.Parse(text).Evaluate(new ThrowingInput());

        // "true || ..." never reaches the input, so it is the one allowed.
        Assert.Equal(text.StartsWith("true", StringComparison.Ordinal) ? PolicyDecision.Allow : PolicyDecision.Deny, decision);
    }

    [Theory]
    [InlineData("has(a)")]
    [InlineData("!has(a)")]
    [InlineData("a == 1")]
    [InlineData("!(a == 1)")]
    [InlineData("a")]
    [InlineData("!a")]
    public void InputReportingDefaultValueDeniesWhateverThePolicy(string text)
    {
        Assert.Equal(PolicyDecision.Deny, AccessPolicy.Parse(text).Evaluate(new DefaultValueInput()));
    }

    [Theory]
    [InlineData("context.resource == \"a\\\"b\\\\c\"", "a\"b\\c", true)]
    [InlineData("context.resource == \"a\\\"b\\\\c\"", "a\"b\\\\c", false)]
    [InlineData("context.resource == \"\"", "", true)]
    [InlineData("context.resource == \"caf\u00e9\"", "cafe\u0301", false)]
    [InlineData("context.resource == \"caf\u00e9\"", "caf\u00e9", true)]
    public void StringsCompareOrdinallyAfterUnescaping(string text, string resource, bool allowed)
    {
        var input = new PolicyInput().Set("context.resource", resource);
        Assert.Equal(allowed ? PolicyDecision.Allow : PolicyDecision.Deny, AccessPolicy.Parse(text).Evaluate(input));
    }

    [Fact]
    public void PeerAttributesAndContextCombine()
    {
        const string text = """
            peer.principal == "org:acme" && peer.chain_length <= 2
              && (context.resource in ["invoices", "payments"] || "auditor" in subject.roles)
              && !("suspended" in subject.flags-x.y)
            """;
        var policy = AccessPolicy.Parse(text);
        var input = new PolicyInput()
            .Set("peer.identifier", "agent-7")
            .Set("peer.principal", "org:acme")
            .Set("peer.chain_length", 2)
            .Set("context.resource", "ledger")
            .Set("subject.roles", ["auditor", "reader"])
            .Set("subject.flags-x.y", Array.Empty<string>());
        Assert.Equal(PolicyDecision.Allow, policy.Evaluate(input));

        input.Set("peer.chain_length", 3);
        Assert.Equal(PolicyDecision.Deny, policy.Evaluate(input));

        input.Set("peer.chain_length", 1).Set("subject.flags-x.y", ["suspended"]);
        Assert.Equal(PolicyDecision.Deny, policy.Evaluate(input));

        // Removing the flags set makes the negated membership Unknown: deny, not allow.
        input.Remove("subject.flags-x.y");
        Assert.Equal(PolicyDecision.Deny, policy.Evaluate(input));
    }

    [Fact]
    public void TextIsKeptVerbatim()
    {
        const string text = "  a ==\n 1 ";
        var policy = AccessPolicy.Parse(text);
        Assert.Same(text, policy.Text);
        Assert.Equal(text, policy.ToString());
    }

    [Fact]
    public void ConcurrentEvaluationsOfOnePolicyAgree()
    {
        var policy = AccessPolicy.Parse(Example);
        var allow = new PolicyInput().Set("subject.role", "billing").Set("subject.env", "prod");
        var deny = new PolicyInput().Set("subject.role", "billing").Set("subject.env", "dev");
        var wrong = 0;
        Parallel.For(0, 20_000, i =>
        {
            var expected = i % 2 == 0 ? PolicyDecision.Allow : PolicyDecision.Deny;
            if (policy.Evaluate(i % 2 == 0 ? allow : deny) != expected)
            {
                Interlocked.Increment(ref wrong);
            }
        });
        Assert.Equal(0, wrong);
    }

    private sealed class ThrowingInput : IPolicyInput
    {
        public bool TryGetValue(string name, out PolicyValue value) => throw new InvalidOperationException("input failed");
    }

    private sealed class DefaultValueInput : IPolicyInput
    {
        public bool TryGetValue(string name, out PolicyValue value)
        {
            value = default;
            return true;
        }
    }
}
