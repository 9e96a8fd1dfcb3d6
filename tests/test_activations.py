"""The nonlinearities and their complementary functions (Eq. 1, Eq. 3 and NOTES.md)."""

import pickle

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import expit

from sksatae import SaturatingAutoEncoder, _kernels
from sksatae.activations import (
    ACTIVATIONS,
    CLOSED_FORMS,
    TabulatedActivation,
    activation_derivative,
    activation_function,
    complementary_derivative,
    complementary_function,
    get_activation,
)

WIDTH = 0.3
rng = np.random.default_rng(0)
Z = np.concatenate([rng.uniform(-3, 3, 5000), [-WIDTH, WIDTH, 0.0, 0.5, 1.0]])


def flat_set_distance(activation, z):
    """Distance to the flat set written from its definition, as intervals."""
    if activation == "shrink":
        return np.maximum(np.abs(z) - WIDTH, 0.0)
    if activation == "relu":
        return np.where(z <= 0, 0.0, z)
    return np.where((z <= 0) | (z >= 1), 0.0, np.minimum(np.abs(z - 0), np.abs(z - 1)))


def in_flat_set(activation, z):
    if activation == "shrink":
        return np.abs(z) <= WIDTH
    if activation == "relu":
        return z <= 0
    return (z <= 0) | (z >= 1)


@pytest.mark.parametrize("activation", CLOSED_FORMS)
def test_complementary_is_distance_to_flat_set(activation):
    fc = complementary_function(activation, Z, WIDTH)
    assert np.all(fc[in_flat_set(activation, Z)] == 0)
    assert np.all(fc[~in_flat_set(activation, Z)] > 0)
    np.testing.assert_allclose(fc, flat_set_distance(activation, Z), atol=1e-15)


@pytest.mark.parametrize("activation", CLOSED_FORMS)
def test_flat_set_has_zero_slope_and_the_rest_does_not(activation):
    h = 1e-7
    away = Z[np.abs(np.abs(Z) - WIDTH) > 1e-3]
    away = away[(np.abs(away) > 1e-3) & (np.abs(away - 1) > 1e-3)]
    numeric = (activation_function(activation, away + h, WIDTH)
               - activation_function(activation, away - h, WIDTH)) / (2 * h)
    np.testing.assert_allclose(activation_derivative(activation, away, WIDTH), numeric, atol=1e-6)
    np.testing.assert_array_equal(numeric == 0, in_flat_set(activation, away) | (numeric == 0))
    numeric_c = (complementary_function(activation, away + h, WIDTH)
                 - complementary_function(activation, away - h, WIDTH)) / (2 * h)
    away_from_peak = np.abs(away - 0.5) > 1e-3
    np.testing.assert_allclose(complementary_derivative(activation, away, WIDTH)[away_from_peak],
                               numeric_c[away_from_peak], atol=1e-6)


def test_shrink_penalty_is_l1_norm_of_codes():
    np.testing.assert_array_equal(complementary_function("shrink", Z, WIDTH),
                                  np.abs(activation_function("shrink", Z, WIDTH)))


def test_satlinear_penalty_is_a_tent_peaking_at_one_half():
    assert complementary_function("satlinear", 0.5) == 0.5
    assert complementary_derivative("satlinear", 0.5) == 0.0
    np.testing.assert_allclose(complementary_function("satlinear", [0.2, 0.8]), [0.2, 0.2])


@pytest.mark.parametrize("activation", CLOSED_FORMS)
def test_compiled_unit_response_matches_reference(activation):
    spec = get_activation(activation, WIDTH).kernel_spec()
    compiled = np.array([_kernels.unit_response(spec, z) for z in Z])
    np.testing.assert_array_equal(compiled[:, 0], activation_function(activation, Z, WIDTH))
    np.testing.assert_array_equal(compiled[:, 1], activation_derivative(activation, Z, WIDTH))
    np.testing.assert_array_equal(compiled[:, 2], complementary_function(activation, Z, WIDTH))
    np.testing.assert_array_equal(compiled[:, 3], complementary_derivative(activation, Z, WIDTH))
    values = np.array([_kernels.unit_value(spec, z) for z in Z])
    np.testing.assert_array_equal(values, activation_function(activation, Z, WIDTH))


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="activation must be one of"):
        activation_function("softsign", Z)


# ----------------------------------------------------------- tabulated activations

CLOSED_FORM_FUNCTIONS = {
    "shrink": lambda z: np.sign(z) * np.maximum(np.abs(z) - WIDTH, 0),
    "relu": lambda z: np.maximum(z, 0),
    "satlinear": lambda z: np.clip(z, 0, 1),
}
EXACT_FLAT_SETS = {
    "shrink": ((-WIDTH, WIDTH),), "relu": ((-np.inf, 0.0),), "satlinear": ((-np.inf, 0.0), (1.0, np.inf)),
}


@pytest.mark.parametrize("activation", CLOSED_FORMS)
def test_numerical_eq1_reproduces_the_closed_forms(activation):
    tabulated = TabulatedActivation.from_function(CLOSED_FORM_FUNCTIONS[activation], name=activation)
    assert tabulated.complementary_form == "distance"
    np.testing.assert_allclose(tabulated.flat_set, EXACT_FLAT_SETS[activation], rtol=0, atol=1e-15)
    assert tabulated.tabulation_error < 1e-12
    z = np.concatenate([Z, rng.uniform(-19, 19, 2000)])
    exact = get_activation(activation, WIDTH)
    np.testing.assert_allclose(tabulated.function(z), exact.function(z), rtol=0, atol=1e-12)
    np.testing.assert_allclose(tabulated.complementary(z), exact.complementary(z), rtol=0, atol=1e-12)
    kinks = np.array([edge for interval in EXACT_FLAT_SETS[activation] for edge in interval] + [0.5])
    away = z[np.min(np.abs(z[:, None] - kinks[np.isfinite(kinks)]), axis=1) > 1e-9]
    np.testing.assert_allclose(tabulated.derivative(away), exact.derivative(away), rtol=0, atol=1e-8)
    np.testing.assert_array_equal(tabulated.complementary_derivative(away),
                                  exact.complementary_derivative(away))


def sigmoid_slope(z):
    return expit(z) * (1 - expit(z))


def tanh_slope(z):
    return 1 - np.tanh(z) ** 2


def eq3_by_quadrature(slope, z, tau=1.0):
    """min(M+, M-) of Eq. 3 with w(l) = l exp(-l/tau)/tau^2, integrated numerically."""
    def look(direction):
        return quad(lambda t: abs(slope(z + direction * t)) * np.exp(-t / tau) / tau, 0, np.inf,
                    epsabs=1e-13, epsrel=1e-11, limit=200)[0]
    return min(look(1.0), look(-1.0))


@pytest.mark.parametrize("name, function, slope", [("sigmoid", expit, sigmoid_slope),
                                                    ("tanh", np.tanh, tanh_slope)])
def test_built_in_eq3_activations(name, function, slope):
    activation = get_activation(name)
    assert activation.flat_set == () and activation.complementary_form == "variation"
    z = np.concatenate([rng.uniform(-45, 45, 3000), np.linspace(-6, 6, 121)])
    scale = np.abs(function(z)).max()
    assert np.abs(activation.function(z) - function(z)).max() / scale < 1e-10
    assert np.abs(activation.derivative(z) - slope(z)).max() < 1e-8
    for point in (-7.3, -2.0, -0.4, 0.0, 0.9, 3.1, 12.0, 39.0):
        assert activation.complementary(point) == pytest.approx(eq3_by_quadrature(slope, point),
                                                                rel=1e-6, abs=1e-12)

    grid = np.linspace(-30, 30, 6001)
    penalty = activation.complementary(grid)
    assert abs(grid[np.argmax(penalty)]) < 0.02  # largest near 0 ...
    left, right = penalty[grid <= 0], penalty[grid >= 0]
    assert np.all(np.diff(left) >= -1e-15) and np.all(np.diff(right) <= 1e-15)  # ... decaying
    assert penalty[0] < 1e-6 * penalty.max() and penalty[-1] < 1e-6 * penalty.max()  # to 0


@pytest.mark.parametrize("activation", ["sigmoid", "shrink"])
def test_activation_evaluates_in_float32_for_float32_input(activation):
    activation = get_activation(activation)
    z = np.linspace(-3, 3, 61) + 0.013  # off the kinks, where rounding picks the side
    for method in ("function", "derivative", "complementary", "complementary_derivative"):
        exact = getattr(activation, method)(z)
        single = getattr(activation, method)(z.astype(np.float32))
        assert exact.dtype == np.float64 and single.dtype == np.float32
        np.testing.assert_allclose(single, exact, rtol=1e-6, atol=1e-6)
    assert activation.function(np.arange(3)).dtype == np.float64


def test_non_monotonic_function_plateaus_where_its_slope_vanishes():
    """Figure 6: at the top of a bump |f'| is 0 but Eq. 3's f_c stays high."""
    bump = TabulatedActivation.from_function(lambda z: np.exp(-z**2 / 2), name="bump")
    assert bump.complementary_form == "variation"
    z = np.linspace(-4, 4, 8001)
    slope, penalty = np.abs(bump.derivative(z)), bump.complementary(z)
    top = np.argmin(np.abs(z))
    assert slope[top] < 1e-12 < 0.5 * slope.max()
    assert penalty[top] > 0.8 * penalty.max()
    near_top = np.abs(z) < 0.25
    assert np.ptp(penalty[near_top]) < 0.15 * penalty[top] < np.ptp(slope[near_top])
    assert abs(bump.complementary_derivative(0.0)) < 1e-12


@pytest.mark.parametrize("activation", list(ACTIVATIONS) + ["bump"])
def test_tabulated_derivatives_match_finite_differences(activation):
    if activation == "bump":
        activation = TabulatedActivation.from_function(lambda z: np.exp(-z**2 / 2), name="bump")
    activation = get_activation(activation, WIDTH)
    kinks = [e for interval in activation.flat_set for e in interval if np.isfinite(e)] + [0, 0.5]
    z = rng.uniform(-6, 6, 4000)
    z = z[np.min(np.abs(z[:, None] - np.array(kinks)), axis=1) > 1e-4]
    h = 1e-6
    for value, slope in ((activation.function, activation.derivative),
                         (activation.complementary, activation.complementary_derivative)):
        numeric = (value(z + h) - value(z - h)) / (2 * h)
        np.testing.assert_allclose(slope(z), numeric, rtol=1e-6, atol=1e-7)


def test_extrapolation_beyond_the_tabulated_range():
    leaky = TabulatedActivation.from_function(lambda z: np.maximum(z, 0.1 * z), limits=(-2, 2))
    np.testing.assert_allclose(leaky.function([5.0, -5.0, 100.0]), [5.0, -0.5, 100.0], rtol=1e-9)
    relu = TabulatedActivation.from_function(lambda z: np.maximum(z, 0), limits=(-2, 2))
    assert relu.flat_set == ((-np.inf, 0.0),)
    np.testing.assert_allclose(relu.function([-1e6, 1e6]), [0.0, 1e6], rtol=1e-9, atol=0)
    np.testing.assert_array_equal(relu.complementary([-1e6, 1e6]), [0.0, 1e6])
    tanh = get_activation("tanh")  # |f'| is ~0 past +-40, so M+ and M- relax to it
    assert tanh.complementary(45.0) <= tanh.complementary(39.0) < 1e-15


@pytest.mark.parametrize("name, low, high", [("sigmoid", 0.0, 1.0), ("tanh", -1.0, 1.0)])
def test_built_in_eq3_activations_stay_in_their_range_far_beyond_the_table(name, low, high):
    # The sigmoid's slope at -40 is 4e-18, not 0: continued along it, f fell below 0 at
    # -41 and reached -425 at -1e20. Where f has reached its asymptote it stays there.
    far = np.array([-np.inf, -1e300, -1e20, -1e17, -1e3, -50.0, 50.0, 1e3, 1e17, 1e300, np.inf])
    values = activation_function(name, far)
    assert np.all((low <= values) & (values <= high))
    np.testing.assert_allclose(values, np.where(far < 0, low, high), atol=1e-17, rtol=0)
    np.testing.assert_array_equal(activation_derivative(name, far), 0.0)
    assert np.all(complementary_function(name, far) >= 0)
    # A tail with a slope still continues along it.
    leaky = TabulatedActivation.from_function(lambda z: np.maximum(z, 1e-3 * z), limits=(-2, 2))
    np.testing.assert_allclose(leaky.function([-1e6]), [-1e3], rtol=1e-9)


def test_codes_of_a_built_in_sigmoid_stay_in_its_range_on_huge_input():
    X = np.random.default_rng(0).standard_normal((40, 5))
    model = SaturatingAutoEncoder(4, activation="sigmoid", max_iter=2, random_state=0).fit(X)
    codes = model.transform(X * 1e18)
    assert np.all((codes >= 0) & (codes <= 1))


def _fields(activation, **changes):
    return {**{key: getattr(activation, key) for key in (
        "name", "complementary_form", "smoothing", "limits", "table", "flat",
        "tabulation_error")}, **changes}


@pytest.mark.parametrize("changes, message", [
    (lambda a: dict(table=a.table[:, :2].copy()), "shape \\(n_points >= 2, 6\\)"),
    (lambda a: dict(table=np.asfortranarray(a.table)), "C-ordered float64"),
    (lambda a: dict(table=a.table.astype(np.float32)), "C-ordered float64"),
    (lambda a: dict(table=np.full_like(a.table, np.nan)), "NaN or infinite"),
    (lambda a: dict(flat=np.zeros((1, 3))), "flat must be"),
    (lambda a: dict(flat=np.array([[1.0, 0.0, 0.0, 0.0, 0.0]])), "sorted, disjoint"),
    (lambda a: dict(complementary_form="foo"), "'distance' or 'variation'"),
    (lambda a: dict(complementary_form="distance"), "needs a flat interval"),
    (lambda a: dict(limits=(20.0, -20.0)), "limits"),
    (lambda a: dict(limits=(1.0,)), "limits"),
    (lambda a: dict(smoothing=-1.0), "smoothing"),
])
def test_hand_built_tables_are_checked_before_compiled_code_reads_them(changes, message):
    # The compiled interpolant reads the tables without bounds checks: a two-column
    # table gave values read past its end, different from run to run.
    tanh = TabulatedActivation.from_function(np.tanh)
    broken = TabulatedActivation(**_fields(tanh, **changes(tanh)))
    for evaluate in (broken.function, broken.complementary):
        with pytest.raises(ValueError, match=message):
            evaluate([0.3])
    with pytest.raises(ValueError, match=message):
        SaturatingAutoEncoder(2, activation=broken, max_iter=1).fit(np.eye(3))
    np.testing.assert_array_equal(TabulatedActivation(**_fields(tanh)).complementary([0.3]),
                                  tanh.complementary([0.3]))


def test_f_is_evaluated_only_on_its_limits():
    # Slopes at the range's ends were central differences, 1e-5 beyond the limits,
    # where f need not be defined; the error then blamed f "on limits".
    square = TabulatedActivation.from_function(lambda z: np.where(z < 0, np.nan, z * z),
                                               limits=(0.0, 2.0))
    np.testing.assert_allclose(square.derivative([0.0, 1.0, 2.0]), [0.0, 2.0, 4.0], atol=1e-8)


def test_derivative_can_be_given_and_is_checked():
    given = TabulatedActivation.from_function(np.sin, np.cos, limits=(-3, 3))
    np.testing.assert_allclose(given.derivative([0.3, -1.2]), np.cos([0.3, -1.2]), atol=1e-12)
    with pytest.raises(ValueError, match="derivative given does not match"):
        TabulatedActivation.from_function(np.sin, np.sin, limits=(-3, 3))


def test_derivative_wrong_on_a_short_stretch_is_refused():
    # 50% too large on |z - 1| < 0.03: a dozen nodes, too few for the error in f to show.
    def wrong(z):
        return np.where(np.abs(z - 1.0) < 0.03, 1.5, 1.0) * expit(z) * (1 - expit(z))

    with pytest.raises(ValueError, match="derivative given does not match f's slope"):
        TabulatedActivation.from_function(expit, wrong, limits=(-40.0, 40.0))


def test_derivative_is_excused_only_between_the_slopes_at_a_kink():
    def leaky(z):
        return np.maximum(z, 0.1 * z)

    def leaky_slope(z):  # 0.1 at the kink z = 0, a node of the grid
        return np.where(z > 0, 1.0, 0.1)

    nodes = np.linspace(-1, 1, 4001)
    assert nodes[2000] == 0
    given = TabulatedActivation.from_function(leaky, leaky_slope, limits=(-1, 1), n_points=4001)
    np.testing.assert_array_equal(given.table[:, 1], leaky_slope(nodes))
    for at_kink in (7.0, -1.0):
        with pytest.raises(ValueError, match="derivative given does not match f's slope at 1 "):
            TabulatedActivation.from_function(
                leaky, lambda z: np.where(z == 0, at_kink, leaky_slope(z)), limits=(-1, 1),
                n_points=4001)
    # Beside the kink, two nodes with a wrong derivative are not excused.
    with pytest.raises(ValueError, match="derivative given does not match f's slope at 2 "):
        TabulatedActivation.from_function(
            leaky, lambda z: np.where((z > 0) & (z < 0.00125), 0.5, leaky_slope(z)),
            limits=(-1, 1), n_points=4001)


@pytest.mark.parametrize("offset", [0.0, 10.0, 1e4])
def test_tabulation_error_is_relative_to_the_range_of_f_whatever_its_offset(offset):
    def shifted(z):
        return offset + np.tanh(z)

    def slope(z):
        return 1 - np.tanh(z) ** 2

    # 65 nodes interpolate tanh to 7e-4 of its range (2): refused whatever the offset.
    with pytest.raises(ValueError, match="interpolating f"):
        TabulatedActivation.from_function(shifted, slope, limits=(-20, 20), n_points=65)
    table = TabulatedActivation.from_function(shifted, slope, limits=(-20, 20), n_points=257)
    nodes = np.linspace(-20, 20, 257)
    midpoints = nodes[:-1] + (nodes[1] - nodes[0]) / 2
    error = np.abs(table.function(midpoints) - offset - np.tanh(midpoints)).max() / 2
    np.testing.assert_allclose(table.tabulation_error, error, rtol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    (dict(function=lambda z: 1.0), "vectorised"),
    (dict(function=lambda z: np.where(z > 5, np.inf, z)), "not finite at z=5"),
    (dict(function=lambda z: np.zeros_like(z)), "constant"),
    (dict(function=np.tanh, complementary="distance"), "no flat region"),
    (dict(function=np.sin, n_points=9), "interpolating f"),
    (dict(function=lambda z: np.where(z > 0.123, 1.0, 0.0)), "jumps at z=0.123"),
    (dict(function=lambda z: np.where(z > 0.123, 1.0 + z, z)), "interpolating f"),
    (dict(function=np.tanh, limits=(1, -1)), "limits"),
    (dict(function=np.tanh, smoothing=0), "smoothing"),
    (dict(function=np.tanh, complementary="l1"), "complementary"),
])
def test_bad_tabulation_gets_a_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TabulatedActivation.from_function(**kwargs)


def test_tabulated_activation_holds_no_callable_and_pickles():
    activation = TabulatedActivation.from_function(lambda z: np.exp(-z**2 / 2), name="bump")
    assert not any(callable(value) for value in vars(activation).values())
    restored = pickle.loads(pickle.dumps(activation))
    assert restored == activation and restored is not activation
    np.testing.assert_array_equal(restored.complementary(Z), activation.complementary(Z))


@pytest.mark.parametrize("limits", [(0.0, 4.0), (-4.0, 0.0)])
def test_a_derivative_at_a_kink_on_an_end_of_the_limits_is_taken_as_given(limits):
    # relu' = 0 at 0: beyond the end f continues flat, as relu does; the check had
    # refused it, the kink being outside the nodes it can test.
    if limits[0] == 0.0:
        function, derivative = (lambda z: np.maximum(z, 0.0)), (lambda z: (z > 0).astype(float))
    else:
        function, derivative = (lambda z: np.minimum(z, 0.0)), (lambda z: (z < 0).astype(float))
    activation = TabulatedActivation.from_function(function, derivative=derivative,
                                                   limits=limits, name="kink at an end")
    beyond = np.array([limits[0] - 1.0, limits[1] + 1.0])
    np.testing.assert_allclose(activation.function(beyond), function(beyond), atol=1e-12)
