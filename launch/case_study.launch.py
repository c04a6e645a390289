"""ros2 launch iomt case_study.launch.py — the paper's Fig. 2 as running nodes.

The same plan as `iomt demo case-study` (without the narrator): a patient's heart-rate
sensor that cannot encrypt, their ECC blood-pressure cuff, a bedside CP-ABE ventilator,
the patient's wallet and Dr House, who asks for the readings.
"""

from iomt.launch.ros2 import generate


def generate_launch_description():
    return generate("case_study")
