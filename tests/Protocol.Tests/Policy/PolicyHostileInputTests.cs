using System.Text;
using SecureChannels.Protocol.Policy;

namespace SecureChannels.Protocol.Tests.Policy;

/// <summary>
/// Hostile and random policy text: the parser either compiles it or throws <see cref="PolicySyntaxException"/>,
/// never anything else, and never overflows the stack. Seeds are fixed so every run sees the same strings.
/// </summary>
public sealed class PolicyHostileInputTests
{
    private const int RandomStringCount = 10_000;
    private const int MutationCount = 10_000;

    private static readonly string[] TokenAlphabet =
    [
        "(", ")", "[", "]", ",", "!", "&&", "||", "==", "!=", "<", "<=", ">", ">=", "&", "|", "=",
        "in", "has", "has(", "true", "false", "0", "7", "42", "9223372036854775807", "9223372036854775808",
        "\"billing\"", "\"prod\"", "\"\"", "\"a\\\"b\"", "\"", "\\", "\"x\\q\"",
        "subject.role", "subject.roles", "subject.env", "peer.chain_length", "context.flag", "missing.name",
        "a.b-c", "Subject", "x..y", "x.", "-", "#", "\u00e9", "\u0001",
        " ", " ", " ", "\t", "\n", "\r\n",
    ];

    private static readonly string[] ValidPolicies =
    [
        "subject.role == \"billing\" && subject.env in [\"staging\", \"prod\"]",
        "peer.chain_length <= 2 || (context.flag && !(\"admin\" in subject.roles))",
        "!has(missing.name) && (subject.roles in [\"a\", \"b\"] || peer.chain_length in [1, 2, 3])",
        "((subject.role != \"x\")) && !!context.flag || 1 < 2 && \"a\\\\b\" == subject.role",
    ];

    [Fact]
    public void HundredThousandNestedParenthesesAreTooDeep()
    {
        var text = new string('(', 100_000) + "true" + new string(')', 100_000);
        var error = Assert.Throws<PolicySyntaxException>(() => AccessPolicy.Parse(text));
        Assert.Equal((PolicyErrorCode.TooDeep, AccessPolicy.MaxNestingDepth), (error.Code, error.Position));
    }

    [Fact]
    public void HundredThousandNegationsAreTooDeep()
    {
        var text = new string('!', 100_000) + "true";
        var error = Assert.Throws<PolicySyntaxException>(() => AccessPolicy.Parse(text));
        Assert.Equal((PolicyErrorCode.TooDeep, AccessPolicy.MaxNestingDepth), (error.Code, error.Position));
    }

    [Fact]
    public void MegabyteOfValidLookingTextIsTooLong()
    {
        var builder = new StringBuilder("subject.role == \"billing\"");
        while (builder.Length < 1024 * 1024)
        {
            builder.Append(" || peer.chain_length < 3");
        }

        var error = Assert.Throws<PolicySyntaxException>(() => AccessPolicy.Parse(builder.ToString()));
        Assert.Equal((PolicyErrorCode.TooLong, AccessPolicy.MaxTextLength), (error.Code, error.Position));
    }

    [Theory]
    [InlineData('a', PolicyErrorCode.TooLong)]
    [InlineData('0', PolicyErrorCode.TooLong)]
    [InlineData(' ', PolicyErrorCode.TooLong)]
    [InlineData('(', PolicyErrorCode.TooDeep)]
    [InlineData('1', PolicyErrorCode.IntegerOverflow)]
    public void MegabyteOfOneCharacterFailsAtTheFirstError(char c, PolicyErrorCode code)
    {
        // Errors come in reading order: nesting and a too-big number are found before the length limit.
        var error = Assert.Throws<PolicySyntaxException>(() => AccessPolicy.Parse(new string(c, 1024 * 1024)));
        Assert.Equal(code, error.Code);
        Assert.True(error.Position <= AccessPolicy.MaxTextLength);
    }

    [Fact]
    public void MegabyteStringLiteralIsTooLong()
    {
        var error = Assert.Throws<PolicySyntaxException>(() => AccessPolicy.Parse("a == \"" + new string('x', 1024 * 1024) + "\""));
        Assert.Equal((PolicyErrorCode.TooLong, AccessPolicy.MaxTextLength), (error.Code, error.Position));
    }

    [Fact]
    public void LongFlatChainsParseAndEvaluateWithoutDeepRecursion()
    {
        // Thousands of operands at one level: flat nodes, so neither parsing nor evaluation recurses per operand.
        var builder = new StringBuilder("n == 0");
        var i = 1;
        while (builder.Length < AccessPolicy.MaxTextLength - 40)
        {
            builder.Append(i % 2 == 0 ? " || n == " : " && n != ").Append(i++);
        }

        var policy = AccessPolicy.Parse(builder.ToString());
        Assert.Equal(PolicyDecision.Allow, policy.Evaluate(new PolicyInput().Set("n", 0)));
    }

    [Fact]
    public void RandomTokenStringsEitherParseOrFailWithSyntaxException()
    {
        var random = new Random(20_240_611);
        var parsed = 0;
        var codes = new HashSet<PolicyErrorCode>();
        for (var n = 0; n < RandomStringCount; n++)
        {
            var builder = new StringBuilder();
            var tokens = random.Next(1, 24);
            for (var t = 0; t < tokens; t++)
            {
                builder.Append(TokenAlphabet[random.Next(TokenAlphabet.Length)]);
                if (random.Next(3) == 0)
                {
                    builder.Append(' ');
                }
            }

            if (CheckParsesOrFailsCleanly(builder.ToString(), codes))
            {
                parsed++;
            }
        }

        // The alphabet is rich enough that both outcomes occur; otherwise the test would prove little.
        Assert.InRange(parsed, 1, RandomStringCount - 1);
        Assert.Contains(PolicyErrorCode.UnexpectedToken, codes);
        Assert.Contains(PolicyErrorCode.TypeMismatch, codes);
    }

    [Fact]
    public void MutatedValidPoliciesEitherParseOrFailWithSyntaxException()
    {
        var random = new Random(7_919);
        var parsed = 0;
        var codes = new HashSet<PolicyErrorCode>();
        for (var n = 0; n < MutationCount; n++)
        {
            var text = new StringBuilder(ValidPolicies[random.Next(ValidPolicies.Length)]);
            var mutations = random.Next(1, 4);
            for (var m = 0; m < mutations && text.Length > 0; m++)
            {
                var at = random.Next(text.Length);
                switch (random.Next(5))
                {
                    case 0:
                        text.Remove(at, Math.Min(random.Next(1, 4), text.Length - at));
                        break;
                    case 1:
                        text.Insert(at, TokenAlphabet[random.Next(TokenAlphabet.Length)]);
                        break;
                    case 2:
                        text[at] = (char)random.Next(0, 128);
                        break;
                    case 3:
                        var other = random.Next(text.Length);
                        (text[at], text[other]) = (text[other], text[at]);
                        break;
                    default:
                        var length = Math.Min(random.Next(1, 12), text.Length - at);
                        text.Insert(random.Next(text.Length), text.ToString(at, length));
                        break;
                }
            }

            if (CheckParsesOrFailsCleanly(text.ToString(), codes))
            {
                parsed++;
            }
        }

        Assert.InRange(parsed, 1, MutationCount - 1);
    }

    /// <summary>
    /// Parses <paramref name="text"/>; on success evaluates it and its negation against a few inputs and checks
    /// that they never both allow; on failure checks the reported location. Any other exception fails the test.
    /// </summary>
    private static bool CheckParsesOrFailsCleanly(string text, HashSet<PolicyErrorCode> codes)
    {
        AccessPolicy policy;
        try
        {
            policy = AccessPolicy.Parse(text);
        }
        catch (PolicySyntaxException error)
        {
            codes.Add(error.Code);
            Assert.True(Enum.IsDefined(error.Code), text);
            Assert.InRange(error.Position, 0, text.Length);
            Assert.Equal(ExpectedLineAndColumn(text, error.Position), (error.Line, error.Column));
            return false;
        }

        Assert.True(AccessPolicy.TryParse(text, out _, out _));
        // The negation may be one level too deep; then there is nothing to compare.
        var negated = AccessPolicy.TryParse("!(" + text + ")", out var parsedNegation, out _) ? parsedNegation : null;
        foreach (var input in Inputs)
        {
            var decision = policy.Evaluate(input);
            Assert.True(decision is PolicyDecision.Allow or PolicyDecision.Deny);
            Assert.Equal(decision, policy.Evaluate(input));
            if (negated is not null && decision == PolicyDecision.Allow)
            {
                Assert.True(negated.Evaluate(input) == PolicyDecision.Deny, $"Both a policy and its negation allow: {text}");
            }
        }

        return true;
    }

    private static readonly PolicyInput[] Inputs =
    [
        new PolicyInput(),
        new PolicyInput()
            .Set("subject.role", "billing")
            .Set("subject.roles", ["a", "admin"])
            .Set("subject.env", "prod")
            .Set("peer.chain_length", 2)
            .Set("context.flag", true),
        new PolicyInput()
            .Set("subject.role", ["billing"])
            .Set("subject.roles", Array.Empty<string>())
            .Set("subject.env", 7)
            .Set("peer.chain_length", "2")
            .Set("context.flag", false)
            .Set("a.b-c", ["prod"]),
    ];

    // Independent of the implementation: LF, CR LF and lone CR end a line; columns count UTF-16 units.
    private static (int Line, int Column) ExpectedLineAndColumn(string text, int position)
    {
        var line = 1;
        var lineStart = 0;
        for (var i = 0; i < position; i++)
        {
            if (text[i] == '\n')
            {
                line++;
                lineStart = i + 1;
            }
            else if (text[i] == '\r' && !(i + 1 < text.Length && text[i + 1] == '\n'))
            {
                line++;
                lineStart = i + 1;
            }
        }

        return (line, position - lineStart + 1);
    }
}
